"""What every page of `newsletter serve` shares: the settings, the pages, the clock, the
request's database handle and the reader's language."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask, g, request

from newsletter.config import Config
from newsletter.store.connect import database_url
from newsletter.store.db import Db
from newsletter.store.handles import StoreHandles
from newsletter.web.language import reader_language
from newsletter.web.pages import Pages

Clock = Callable[[], datetime]
HANDLES = "newsletter.handles"  # app.extensions key: the process's StoreHandles


def app_handles(app: Flask, config: Config, handles: StoreHandles | None = None) -> StoreHandles:
    """Where the app's requests and helpers get database handles: `handles` (serve's one per
    process, closed at its shutdown), else the app's own, closed when the app is collected."""
    if HANDLES not in app.extensions:
        if handles is None:
            handles = StoreHandles(database_url(config))
            weakref.finalize(app, handles.close)
        app.extensions[HANDLES] = handles
    return app.extensions[HANDLES]


def request_db(handles: StoreHandles) -> Db:
    """One database handle per request, taken on first use (app.py gives it back at teardown)."""
    if "db" not in g:
        g.db = handles.db()
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
    handles: StoreHandles | None = None  # create_app passes app_handles(); None: its own
    pages: Pages = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", Pages(self.config, self.prefix))
        if self.handles is None:
            object.__setattr__(self, "handles", StoreHandles(database_url(self.config)))

    def db(self) -> Db:
        assert self.handles is not None  # __post_init__
        return request_db(self.handles)

    def language(self, preferred: str = "") -> str:
        """?lang= (the language links on every page), else PREFERRED (the subscriber's),
        else the browser's Accept-Language, else the newsletter's default (language.py)."""
        return reader_language(request.args.get("lang", ""), preferred,
                               request.accept_languages, self.config.default_language)
