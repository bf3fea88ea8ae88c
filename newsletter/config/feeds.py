"""[[feeds]]: one table per feed, each named once per language."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.config.problems import Problems
from newsletter.config.settings import FeedConfig


def parse_feeds(p: Problems, raw: Any, root: Path) -> list[FeedConfig]:  # noqa: ANN401 - TOML
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
        translations = _section_translations(p, table, where)
        url = _feed_url(p, table, where, root)
        kind = p.text(table, "kind", where, required=False, default="news")
        if kind not in ("news", "events"):
            p.add(f"{where}.kind", "must be 'news' or 'events'")
        keywords = p.strings(table, "keywords", where, "must be a list of words") or []
        feeds.append(FeedConfig(
            name=name, url=url, section=p.text(table, "section", where), kind=kind,
            max_items=p.number(table, "max_items", where, 5, minimum=1, integer=True),
            keywords=tuple(k.lower() for k in keywords), language=language,
            section_translations=tuple(sorted(translations.items())),
        ))
    return feeds


def _section_translations(p: Problems, table: dict, where: str) -> dict:
    translations = table.get("translations", {})
    if not isinstance(translations, dict) or not all(
            isinstance(v, str) and "\n" not in v for v in translations.values()):
        p.add(f"{where}.translations", "must be a table of language = \"section title\"")
        return {}
    return translations


def _feed_url(p: Problems, table: dict, where: str, root: Path) -> str:
    """An http(s) URL as written; a file: URL or a path resolved against the config's folder."""
    url = p.text(table, "url", where)
    scheme = urlsplit(url).scheme
    if scheme == "file":
        url = urlsplit(url).path
    elif scheme not in ("http", "https") and len(scheme) > 1:
        # a one-letter scheme is a Windows drive letter
        p.add(f"{where}.url", f"must be http(s) or a local path, not {scheme}:")
    if url and not url.startswith(("http://", "https://")):
        url = str(root / url)
    return url
