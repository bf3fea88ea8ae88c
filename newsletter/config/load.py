"""Load and validate newsletter.toml into a frozen Config; every bad key is reported at once."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from newsletter.config.feeds import parse_feeds
from newsletter.config.newsletter_table import (
    check_header_values,
    parse_base_url,
    parse_sender,
    parse_texts,
    parse_timezone,
)
from newsletter.config.problems import Problems
from newsletter.config.reach import parse_reach
from newsletter.config.settings import BATCH_SIZE, Config
from newsletter.config.tables import (
    parse_allow_hosts_table,
    parse_return_path,
    parse_review,
    parse_sns_topics,
    parse_translations,
    parse_web,
)
from newsletter.errors import ConfigError

_SECTIONS: dict[str, set[str]] = {
    "newsletter": {
        "name", "from", "reply_to", "base_url", "list_id", "default_language", "timezone",
        "organisation", "postal_address", "reason",
    },
    "feeds": {"name", "url", "section", "kind", "max_items", "keywords", "language",
              "translations"},
    "subscribers": {"files"},
    "store": {"path", "url"},
    "delivery": {"connections", "rate_per_second", "transport", "lease_seconds", "processes",
                 "batch_size"},
    "dkim": {"selector", "domain", "key_file"},
    "bounces": {"soft_limit", "soft_window_days", "address", "unsubscribe_address", "verp",
                "imap_move_to"},
    "web": {"confirm_per_address_hours", "per_client_per_hour", "global_per_hour",
            "trusted_proxies"},
    "network": {"allow_hosts"},
    "webhooks": {"sns_topics"},
    "review": {"required"},
    "reach": {"count_clicks", "scanner_seconds"},
    "translations": set(),  # [translations.LANG] tables, checked in parse_translations
}


def load_config(path: Path | str = "newsletter.toml") -> Config:
    """Read newsletter.toml; raise ConfigError listing every bad key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("no such file (pass --config PATH)", where=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from exc
    return parse_config(data, path)


def parse_config(data: dict, path: Path) -> Config:
    """Validate a parsed TOML document.

    Each section is read in the order its problems have always been reported in."""
    root = path.parent  # kept relative, so messages name files as the user sees them
    p = Problems()
    _check_names(p, data)
    nl = _table(data, "newsletter")
    if "newsletter" not in data:
        p.add("newsletter", "section is missing")
    sender = parse_sender(p, nl)
    base_url = parse_base_url(p, nl)
    check_header_values(p, nl)
    tz = parse_timezone(p, nl)
    feeds = parse_feeds(p, data.get("feeds", []), root)
    files = p.strings(_table(data, "subscribers"), "files", "subscribers",
                      "must be a list of CSV paths") or []
    store_path = p.text(_table(data, "store"), "path", "store", required=False,
                        default="newsletter.db")
    store_url = p.text(_table(data, "store"), "url", "store", required=False)
    if store_url.startswith("sqlite:///"):  # the lock and the checks look at that file
        store_path = store_url[len("sqlite:///"):] or store_path
    delivery = _parse_delivery(p, _table(data, "delivery"))
    dkim = _table(data, "dkim")
    key_file = p.text(dkim, "key_file", "dkim", required=bool(dkim))
    bounces = _table(data, "bounces")
    config = Config(
        root=root,
        sender=sender,
        base_url=base_url,
        timezone=tz,
        **parse_texts(p, nl, sender),
        feeds=tuple(feeds),
        subscriber_files=tuple(root / f for f in files),
        store_path=root / store_path,
        store_url=store_url,
        **delivery,
        dkim_selector=p.text(dkim, "selector", "dkim", required=bool(dkim)),
        dkim_domain=p.text(dkim, "domain", "dkim", required=bool(dkim)),
        dkim_key_file=(root / key_file) if key_file else None,
        translations=parse_translations(p, data.get("translations", {})),
        soft_bounce_limit=p.number(bounces, "soft_limit", "bounces", 3, minimum=1, integer=True),
        soft_bounce_window_days=p.number(bounces, "soft_window_days", "bounces", 30, minimum=1,
                                         integer=True),
        **parse_return_path(p, bounces, sender),
        source=path,
        web=parse_web(p, data.get("web", {})),
        allow_hosts=parse_allow_hosts_table(p, data.get("network", {})),
        webhook_sns_topics=parse_sns_topics(p, data.get("webhooks", {})),
        review_required=parse_review(p, data.get("review", {})),
        reach=parse_reach(p, data.get("reach", {})),
    )
    if p.items:
        raise ConfigError("; ".join(p.items), where=str(path))
    return config


def _table(data: dict, section: str) -> dict:
    """A section that must be a table; anything else reads as empty (_check_names says so)."""
    value = data.get(section)
    return value if isinstance(value, dict) else {}


def _check_names(p: Problems, data: dict) -> None:
    """Unknown sections and keys, and sections that are not tables."""
    for section, value in data.items():
        if section not in _SECTIONS:
            p.add(section, f"is not a known section (known: {', '.join(sorted(_SECTIONS))})")
            continue
        for table in value if isinstance(value, list) else [value]:
            if not isinstance(table, dict):
                p.add(section, "must be a table")
            elif section != "translations":
                for key in table:
                    if key not in _SECTIONS[section]:
                        p.add(f"{section}.{key}", "is not a known key")


def _parse_delivery(p: Problems, delivery: dict) -> dict[str, Any]:
    """[delivery] connections, rate_per_second, transport and lease_seconds."""
    connections = p.number(delivery, "connections", "delivery", 2, minimum=1, integer=True)
    rate = p.number(delivery, "rate_per_second", "delivery", 0, minimum=0)
    transport = p.text(delivery, "transport", "delivery", required=False)
    if isinstance(delivery.get("transport"), str) and transport not in ("maildir", "smtp"):
        p.add("delivery.transport", f'must be "maildir" or "smtp", not {transport!r}')
    # A sender on another host recovers a claim this long after its owner stopped renewing.
    lease = p.number(delivery, "lease_seconds", "delivery", 300, minimum=1, integer=True)
    # Rows a claim takes: one commit per batch; a crash leaves up to this many `unknown`.
    batch = p.number(delivery, "batch_size", "delivery", BATCH_SIZE, minimum=1, integer=True)
    return {"connections": connections, "rate_per_second": float(rate), "transport": transport,
            "lease_seconds": lease, "processes": _processes(p, delivery), "batch_size": batch}


def _processes(p: Problems, delivery: dict) -> int:
    """[delivery] processes: "auto" (0: one per core, at most `connections`) or a number."""
    if delivery.get("processes", "auto") == "auto":
        return 0
    if isinstance(delivery["processes"], str):
        p.add("delivery.processes", f'must be "auto" or a whole number, not '
                                    f'{delivery["processes"]!r}')
        return 0
    return p.number(delivery, "processes", "delivery", 0, minimum=1, integer=True)
