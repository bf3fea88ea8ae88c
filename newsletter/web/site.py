"""What every page of `newsletter serve` shares: the settings, the pages, the clock, the
request's database handle and the reader's language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import g, request

from newsletter.config import Config
from newsletter.store.connect import database_url, open_store
from newsletter.store.db import Db
from newsletter.web.language import reader_language
from newsletter.web.pages import Pages

Clock = Callable[[], datetime]


def request_db(config: Config) -> Db:
    """One database handle per request, opened on first use (app.py closes it at teardown)."""
    if "db" not in g:
        g.db = open_store(database_url(config))
    return g.db


def close_request_db() -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


@dataclass(frozen=True)
class Site:
    """The app's settings, as the route modules take them."""

    config: Config
    prefix: str  # base_url's path, '' at the root
    clock: Clock
    on_queued: Callable[[], None] = lambda: None  # wakes the mail worker (no I/O)
    pages: Pages = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", Pages(self.config, self.prefix))

    def db(self) -> Db:
        return request_db(self.config)

    def language(self, preferred: str = "") -> str:
        """?lang= (the language links on every page), else PREFERRED (the subscriber's),
        else the browser's Accept-Language, else the newsletter's default (language.py)."""
        return reader_language(request.args.get("lang", ""), preferred,
                               request.accept_languages, self.config.default_language)
