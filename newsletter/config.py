"""Load and validate newsletter.toml into a frozen Config; every bad key is reported at once."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config_reach import ReachSettings, parse_reach
from newsletter.errors import ConfigError
from newsletter.headers import header_text_problem
from newsletter.netguard import parse_allow_hosts


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str  # an http(s) URL, or a local path already resolved against the config's folder
    section: str
    kind: str = "news"  # "news" renders item cards, "events" renders event rows
    max_items: int = 5
    keywords: tuple[str, ...] = ()
    language: str = ""  # "": the default feed; "fr": replaces the feed of the same name for fr
    section_translations: tuple[tuple[str, str], ...] = ()  # (language, section title)

    def section_in(self, language: str) -> str:
        return dict(self.section_translations).get(language, self.section)

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class WebSettings:
    """[web]: the subscribe form's abuse limits and which proxies may name the client."""

    confirm_per_address_hours: int = 6  # one confirmation mail per mailbox in this many hours
    per_client_per_hour: int = 10  # subscribe requests from one client address
    global_per_hour: int = 200  # confirmation mails queued in all
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed


@dataclass(frozen=True)
class Config:
    root: Path
    name: str
    sender: Address
    reply_to: str
    base_url: str
    list_id: str
    default_language: str
    timezone: ZoneInfo
    organisation: str
    postal_address: str
    reason: str
    feeds: tuple[FeedConfig, ...]
    subscriber_files: tuple[Path, ...]
    store_path: Path
    connections: int = 2
    rate_per_second: float = 0.0
    transport: str = ""  # [delivery] transport: "maildir" or "smtp"; "" = not set
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: Path | None = None
    translations: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()  # lang -> key -> text
    soft_bounce_limit: int = 3
    soft_bounce_window_days: int = 30
    bounce_address: str = ""  # [bounces] address: MAIL FROM; "" is the From address
    unsubscribe_address: str = ""  # [bounces] unsubscribe_address: the mailto; "" is the above
    verp: bool = False  # [bounces] verp: MAIL FROM is address's local part + "+" + id token
    imap_move_to: str = ""  # [bounces] imap_move_to: where processed IMAP messages go
    web: WebSettings = field(default_factory=WebSettings)
    allow_hosts: frozenset[str] = frozenset()  # [network]: hosts fetched despite a private IP
    webhook_sns_topics: tuple[str, ...] = ()  # [webhooks] sns_topics: SNS TopicArns we accept
    review_required: bool = False  # [review] required: an edition needs approved_by to go
    reach: ReachSettings = field(default_factory=ReachSettings)  # [reach]: counted links
    source: Path = field(default=Path("newsletter.toml"))

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def sender_domain(self) -> str:
        return self.sender.domain

    def text_in(self, key: str, language: str) -> str:
        """organisation or reason in a language ([translations.LANG]), else as configured."""
        own = dict(dict(self.translations).get(language, ()))
        return own.get(key) or getattr(self, key)


_SECTIONS: dict[str, set[str]] = {
    "newsletter": {
        "name", "from", "reply_to", "base_url", "list_id", "default_language", "timezone",
        "organisation", "postal_address", "reason",
    },
    "feeds": {"name", "url", "section", "kind", "max_items", "keywords", "language",
              "translations"},
    "subscribers": {"files"},
    "store": {"path"},
    "delivery": {"connections", "rate_per_second", "transport"},
    "dkim": {"selector", "domain", "key_file"},
    "bounces": {"soft_limit", "soft_window_days", "address", "unsubscribe_address", "verp",
                "imap_move_to"},
    "web": {"confirm_per_address_hours", "per_client_per_hour", "global_per_hour",
            "trusted_proxies"},
    "network": {"allow_hosts"},
    "webhooks": {"sns_topics"},
    "review": {"required"},
    "reach": {"count_clicks", "scanner_seconds"},
    "translations": set(),  # [translations.LANG] tables, checked in _parse_translations
}


class _Problems:
    """Collects every problem so the editor fixes the file in one pass."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"'{key}' {message}")

    def text(self, table: dict, key: str, where: str, *, required: bool = True,
             default: str = "") -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.add(f"{where}.{key}", "is missing")
            return default
        if not isinstance(value, str) or (required and not value.strip()):
            self.add(f"{where}.{key}", "must be a non-empty string")
            return default
        if key != "postal_address" and ("\r" in value or "\n" in value):
            self.add(f"{where}.{key}", "must be on one line")
            return default
        return value.strip()

    def number(self, table: dict, key: str, where: str, default: float, *,
               minimum: float, integer: bool = False) -> Any:
        value = table.get(key, default)
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or value < minimum:
            kind = "a whole number" if integer else "a number"
            self.add(f"{where}.{key}", f"must be {kind} of at least {minimum:g}")
            return default
        return value


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
    """Validate a parsed TOML document."""
    root = path.parent  # kept relative, so messages name files as the user sees them
    p = _Problems()
    for section, value in data.items():
        if section not in _SECTIONS:
            p.add(section, f"is not a known section (known: {', '.join(sorted(_SECTIONS))})")
            continue
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            if not isinstance(table, dict):
                p.add(section, "must be a table")
                continue
            for key in table:
                if section == "translations":
                    continue
                if key not in _SECTIONS[section]:
                    p.add(f"{section}.{key}", "is not a known key")
    nl = data.get("newsletter", {}) if isinstance(data.get("newsletter"), dict) else {}
    if "newsletter" not in data:
        p.add("newsletter", "section is missing")
    sender = _parse_sender(p, nl)
    base_url = p.text(nl, "base_url", "newsletter", default="https://example.invalid")
    if base_url and urlsplit(base_url).scheme not in ("http", "https"):
        p.add("newsletter.base_url", "must start with https:// (or http://)")
    elif base_url and not _URL_RE.fullmatch(base_url):
        # It starts every List-Unsubscribe URL, which is written whole into a header.
        p.add("newsletter.base_url", "must be a plain URL: ASCII, no spaces, quotes, <, > or ,")
    _check_header_values(p, nl)
    tz = _parse_timezone(p, nl)
    feeds = _parse_feeds(p, data.get("feeds", []), root)
    subs = data.get("subscribers", {}) if isinstance(data.get("subscribers"), dict) else {}
    files = subs.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        p.add("subscribers.files", "must be a list of CSV paths")
        files = []
    store = data.get("store", {}) if isinstance(data.get("store"), dict) else {}
    store_path = p.text(store, "path", "store", required=False, default="newsletter.db")
    delivery = data.get("delivery", {}) if isinstance(data.get("delivery"), dict) else {}
    connections = p.number(delivery, "connections", "delivery", 2, minimum=1, integer=True)
    rate = p.number(delivery, "rate_per_second", "delivery", 0, minimum=0)
    transport = p.text(delivery, "transport", "delivery", required=False)
    if isinstance(delivery.get("transport"), str) and transport not in ("maildir", "smtp"):
        p.add("delivery.transport", f'must be "maildir" or "smtp", not {transport!r}')
    dkim = data.get("dkim", {}) if isinstance(data.get("dkim"), dict) else {}
    key_file = p.text(dkim, "key_file", "dkim", required=bool(dkim))
    bounces = data.get("bounces", {}) if isinstance(data.get("bounces"), dict) else {}
    config = Config(
        root=root,
        name=p.text(nl, "name", "newsletter"),
        sender=sender,
        reply_to=p.text(nl, "reply_to", "newsletter", required=False),
        base_url=base_url.rstrip("/"),
        list_id=p.text(nl, "list_id", "newsletter"),
        default_language=_language(p, nl),
        timezone=tz,
        organisation=p.text(nl, "organisation", "newsletter", required=False,
                            default=sender.display_name or sender.domain),
        postal_address=p.text(nl, "postal_address", "newsletter"),
        reason=p.text(nl, "reason", "newsletter", required=False,
                      default="You receive this because you subscribed to our newsletter."),
        feeds=tuple(feeds),
        subscriber_files=tuple(root / f for f in files),
        store_path=root / store_path,
        connections=connections,
        rate_per_second=float(rate),
        transport=transport,
        dkim_selector=p.text(dkim, "selector", "dkim", required=bool(dkim)),
        dkim_domain=p.text(dkim, "domain", "dkim", required=bool(dkim)),
        dkim_key_file=(root / key_file) if key_file else None,
        translations=_parse_translations(p, data.get("translations", {})),
        soft_bounce_limit=p.number(bounces, "soft_limit", "bounces", 3, minimum=1, integer=True),
        soft_bounce_window_days=p.number(bounces, "soft_window_days", "bounces", 30, minimum=1,
                                         integer=True),
        **_parse_return_path(p, bounces, sender),
        source=path,
        web=_parse_web(p, data.get("web", {})),
        allow_hosts=_parse_allow_hosts(p, data.get("network", {})),
        webhook_sns_topics=_parse_sns_topics(p, data.get("webhooks", {})),
        review_required=_parse_review(p, data.get("review", {})),
        reach=parse_reach(p, data.get("reach", {})),
    )
    if p.items:
        raise ConfigError("; ".join(p.items), where=str(path))
    return config


# Header-bound values: RFC 2047 encoded words or control characters here would be decoded or
# refused only when the first message is built, after the edition is frozen (see message.py).
_ADDR_SPEC_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+")
_LIST_ID_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")
_URL_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+")


def _check_header_values(p: _Problems, nl: dict) -> None:
    """What p.text does not catch in header-bound keys (it reports CR/LF itself)."""
    shapes = {
        "reply_to": (_ADDR_SPEC_RE, "must be one plain ASCII address like 'team@example.org'"),
        # RFC 2919: a list-id is a dot-atom
        "list_id": (_LIST_ID_RE, "must be a dot-separated ASCII name like 'news.example.org'"),
    }
    for key in ("name", "from", "reply_to", "list_id"):
        value = nl.get(key)
        if not isinstance(value, str) or not value.strip() or "\r" in value or "\n" in value:
            continue
        if problem := header_text_problem(value):  # the one rule for header text
            p.add(f"newsletter.{key}", problem)
        elif key in shapes and not shapes[key][0].fullmatch(value.strip()):
            p.add(f"newsletter.{key}", shapes[key][1])


def _parse_web(p: _Problems, raw: object) -> WebSettings:
    """[web] limits; trusted_proxies are IP addresses or networks (CIDR)."""
    import ipaddress

    table = raw if isinstance(raw, dict) else {}
    proxies = table.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(x, str) for x in proxies):
        p.add("web.trusted_proxies", "must be a list of IP addresses or networks")
        proxies = []
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            p.add("web.trusted_proxies", f"has {proxy!r}, not an IP address or network")
    defaults = WebSettings()
    return WebSettings(
        confirm_per_address_hours=p.number(table, "confirm_per_address_hours", "web",
                                           defaults.confirm_per_address_hours, minimum=0,
                                           integer=True),
        per_client_per_hour=p.number(table, "per_client_per_hour", "web",
                                     defaults.per_client_per_hour, minimum=1, integer=True),
        global_per_hour=p.number(table, "global_per_hour", "web", defaults.global_per_hour,
                                 minimum=1, integer=True),
        trusted_proxies=tuple(proxies),
    )


# RFC 5321 4.5.3.1.1: a local part has at most 64 octets; VERP adds "+" and a 32-character
# id token (newsletter.audience.tokens.make_id_token) to the bounce address's own local part.
_VERP_LOCAL_MAX = 64 - 1 - 32


def _parse_return_path(p: _Problems, table: dict, sender: Address) -> dict[str, Any]:
    """[bounces] address, unsubscribe_address, verp and imap_move_to."""
    found: dict[str, Any] = {}
    for key, field_name in (("address", "bounce_address"),
                            ("unsubscribe_address", "unsubscribe_address")):
        value = p.text(table, key, "bounces", required=False)
        if value and not _ADDR_SPEC_RE.fullmatch(value):
            p.add(f"bounces.{key}", "must be one plain ASCII address like 'bounces@example.org'")
            value = ""
        found[field_name] = value
    verp = table.get("verp", False)
    if not isinstance(verp, bool):
        p.add("bounces.verp", "must be true or false")
        verp = False
    local = (found["bounce_address"] or sender.addr_spec).rsplit("@", 1)[0]
    if verp and len(local) > _VERP_LOCAL_MAX:
        p.add("bounces.address", f"local part {local!r} is too long for VERP: at most "
              f"{_VERP_LOCAL_MAX} characters, as the token takes 33 of the 64 (RFC 5321)")
    if verp and "+" in local:
        p.add("bounces.address", "must not contain '+' when verp = true (VERP adds '+TOKEN')")
    found["verp"] = verp
    found["imap_move_to"] = p.text(table, "imap_move_to", "bounces", required=False)
    return found


def _parse_allow_hosts(p: _Problems, network: object) -> frozenset[str]:
    """[network] allow_hosts: host names (or host:port) fetched although they resolve to a
    loopback or private address, e.g. an intranet feed server."""
    raw = network.get("allow_hosts", []) if isinstance(network, dict) else []
    if not isinstance(raw, list) or not all(isinstance(h, str) for h in raw):
        p.add("network.allow_hosts", 'must be a list of host names, e.g. ["feeds.intranet"]')
        return frozenset()
    hosts, bad = parse_allow_hosts(raw)
    if bad:
        p.add("network.allow_hosts", f"has entries that are not 'host' or 'host:port': "
              f"{', '.join(repr(b) for b in bad)}")
    return hosts


_SNS_TOPIC_RE = re.compile(r"arn:aws:sns:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}")


def _parse_review(p: _Problems, review: object) -> bool:
    """[review] required = true: send and check want each ready edition's approved_by."""
    required = review.get("required", False) if isinstance(review, dict) else False
    if not isinstance(required, bool):
        p.add("review.required", "must be true or false")
        return False
    return required


def _parse_sns_topics(p: _Problems, webhooks: object) -> tuple[str, ...]:
    """[webhooks] sns_topics: the only SNS TopicArns whose messages the SES webhook accepts."""
    raw = webhooks.get("sns_topics", []) if isinstance(webhooks, dict) else []
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        p.add("webhooks.sns_topics", 'must be a list of TopicArns, e.g. '
              '["arn:aws:sns:us-east-1:123456789012:ses-bounces"]')
        return ()
    for topic in raw:
        if not _SNS_TOPIC_RE.fullmatch(topic):
            p.add("webhooks.sns_topics", f"has {topic[:100]!r}, not an SNS TopicArn "
                  "(arn:aws:sns:REGION:ACCOUNT:NAME)")
    return tuple(raw)


def _parse_sender(p: _Problems, nl: dict) -> Address:
    raw = p.text(nl, "from", "newsletter")
    name, addr = parseaddr(raw)
    # getaddresses: parseaddr keeps the first of "a@x.org, b@y.org" and drops the rest silently
    if raw and (len(getaddresses([raw])) != 1 or not _ADDR_SPEC_RE.fullmatch(addr)):
        p.add("newsletter.from", "must be one address like 'Name <news@example.org>' "
              "(the address in ASCII)")
        return Address("", "invalid", "example.invalid")
    if not raw:
        return Address("", "invalid", "example.invalid")
    user, domain = addr.split("@")
    return Address(name, user, domain)


def _parse_timezone(p: _Problems, nl: dict) -> ZoneInfo:
    name = p.text(nl, "timezone", "newsletter", required=False, default="UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        p.add("newsletter.timezone", f"is not a known time zone: {name!r} (e.g. 'Europe/Zurich')")
        return ZoneInfo("UTC")


def _parse_feeds(p: _Problems, raw: Any, root: Path) -> list[FeedConfig]:
    if not isinstance(raw, list):
        p.add("feeds", "must be written as [[feeds]] tables")
        return []
    feeds, names = [], set()
    for i, table in enumerate(raw, 1):
        if not isinstance(table, dict):
            continue
        where = f"feeds[{i}]"
        name = p.text(table, "name", where)
        language = p.text(table, "language", where, required=False)
        if (name, language) in names:
            p.add(f"{where}.name", f"repeats the feed name {name!r}"
                  + (f" for language {language!r}" if language else ""))
        names.add((name, language))
        translations = table.get("translations", {})
        if not isinstance(translations, dict) or not all(
                isinstance(v, str) and "\n" not in v for v in translations.values()):
            p.add(f"{where}.translations", "must be a table of language = \"section title\"")
            translations = {}
        url = p.text(table, "url", where)
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            pass
        elif scheme == "file":
            url = urlsplit(url).path
        elif len(scheme) > 1:  # a one-letter scheme is a Windows drive letter
            p.add(f"{where}.url", f"must be http(s) or a local path, not {scheme}:")
        if url and not url.startswith(("http://", "https://")):
            url = str(root / url)
        kind = p.text(table, "kind", where, required=False, default="news")
        if kind not in ("news", "events"):
            p.add(f"{where}.kind", "must be 'news' or 'events'")
        keywords = table.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            p.add(f"{where}.keywords", "must be a list of words")
            keywords = []
        feeds.append(FeedConfig(
            name=name, url=url, section=p.text(table, "section", where), kind=kind,
            max_items=p.number(table, "max_items", where, 5, minimum=1, integer=True),
            keywords=tuple(k.lower() for k in keywords), language=language,
            section_translations=tuple(sorted(translations.items())),
        ))
    return feeds


_TRANSLATABLE = ("organisation", "reason")


def _parse_translations(p: _Problems, raw: object) -> tuple:
    """[translations.fr] organisation = "...", reason = "...": the footer in other languages."""
    if not isinstance(raw, dict):
        p.add("translations", "must hold [translations.LANG] tables")
        return ()
    result = []
    for language, table in raw.items():
        where = f"translations.{language}"
        if not isinstance(table, dict):
            p.add(where, "must be a table")
            continue
        texts = []
        for key in table:
            if key not in _TRANSLATABLE:
                p.add(f"{where}.{key}", f"is not a known key (known: {', '.join(_TRANSLATABLE)})")
            else:
                texts.append((key, p.text(table, key, where)))
        result.append((language, tuple(texts)))
    return tuple(result)


def _language(p: _Problems, nl: dict) -> str:
    value = p.text(nl, "default_language", "newsletter", required=False, default="en").lower()
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", value):
        p.add("newsletter.default_language", f"must be a language code like 'en' or 'pt-br', "
              f"not {value!r}")
        return "en"
    return value
