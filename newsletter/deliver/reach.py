"""Counted links at freeze time: each edition's outside links through /r/ID (ids made in the
store, one per issue, language and URL), and its canary. Build, preview and check show the
draft's own links; only the frozen copy, which is what goes out and what the archive shows,
carries the counted ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from newsletter.compose.edition import Composed
from newsletter.compose.links import count_links
from newsletter.config import Config
from newsletter.model import Edition
from newsletter.store import reach as store_reach
from newsletter.store.db import Db


def counted_editions(config: Config, conn: Db,
                     editions: Sequence[Edition]) -> list[Edition]:
    """The editions as they are to be frozen: unchanged unless [reach] count_clicks is on."""
    if not config.reach.count_clicks:
        return list(editions)
    def ids_for(edition: Edition) -> Callable[[list[str]], dict[str, str]]:
        return lambda urls: store_reach.link_ids(conn, edition.issue, edition.language, urls)

    return [count_links(e, config.base_url, ids_for(e), store_reach.CANARY).edition
            for e in editions]


def counted_composed(config: Config, conn: Db,
                     composed: Sequence[Composed]) -> list[Composed]:
    """The same, for composed editions (what the freeze takes)."""
    editions = counted_editions(config, conn, [c.edition for c in composed])
    return [replace(c, edition=e) for c, e in zip(composed, editions, strict=True)]
