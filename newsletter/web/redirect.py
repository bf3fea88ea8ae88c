"""`newsletter serve`: /r/ID, a counted link: 302 to the URL the edition linked to.

Only ids the store knows redirect (an unknown one is the invalid-link page, 404): this is no
open redirect. HEAD is answered and never counted; a GET is handed to the scanner filter,
which counts it once its window has passed without a canary from the same client. A
background thread writes the settled totals; nothing about the request is stored.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Callable

from flask import Blueprint, Flask, g, redirect, request
from werkzeug.wrappers import Response

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.i18n import LANGUAGES
from newsletter.store import reach as store_reach
from newsletter.store.handles import StoreHandles
from newsletter.web.optin import client_key
from newsletter.web.pages import Pages
from newsletter.web.scan_filter import ScannerFilter
from newsletter.web.site import app_handles

_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,32}")
_log = logging.getLogger("newsletter.reach")


class Committer:
    """Writes what the filter settled, about every `interval` seconds while hits wait; the
    thread ends when nothing is left and starts again with the next hit."""

    def __init__(self, handles: StoreHandles, scanners: ScannerFilter, interval: float) -> None:
        self.handles, self.scanners, self.interval = handles, scanners, interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="reach-commit",
                                                daemon=True)
                self._thread.start()

    def flush(self, *, everything: bool = False) -> None:
        settled = self.scanners.settle(everything=everything)
        if not settled:
            return
        try:
            with self.handles.db() as conn:
                store_reach.add_hits(conn, settled.clicks, settled.filtered)
        except NewsletterError as exc:  # StoreError included
            # Kept for the next round rather than lost: a busy database is no reason to
            # forget a click.
            self.scanners.restore(settled)
            _log.warning("reach: click totals not written yet: %s", exc)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()
            with self._lock:
                if not self.scanners.pending():
                    self.flush()  # hits settled since the flush above
                    self._thread = None
                    return


def register_redirects(app: Flask, config: Config, prefix: str, *,
                       clock: Callable[[], float] = time.monotonic) -> Committer:
    """Mount /r/<id> under base_url's path. Returns the committer (serve flushes it at exit)."""
    scanners = ScannerFilter(config.reach.scanner_seconds, clock)
    handles = app_handles(app, config)
    committer = Committer(handles, scanners, min(1.0, config.reach.scanner_seconds / 4))
    # At exit (serve stops on Ctrl-C and SIGTERM alike) the hits still waiting are counted.
    # A strong reference on purpose: serve's app may be collected before atexit runs.
    atexit.register(committer.flush, everything=True)
    pages = Pages(config, prefix)
    known: dict[str, store_reach.Link] = {}  # ids never change once made: no query per click
    bp = Blueprint("reach", __name__)

    def find(link_id: str) -> store_reach.Link | None:
        if link_id in known:
            return known[link_id]
        if not _ID_RE.fullmatch(link_id):
            return None
        with handles.db() as conn:  # once per id and process (known)
            link = store_reach.find_link(conn, link_id)
        if link is not None and len(known) < 100_000:
            known[link_id] = link
        return link

    @bp.get("/r/<link_id>")
    def counted_link(link_id: str) -> Response | tuple[str, int]:
        link = find(link_id)
        if link is None:
            body, _status = pages.invalid_link(
                request.accept_languages.best_match(LANGUAGES) or config.default_language)
            return body, 404
        if request.method == "GET":  # HEAD (and OPTIONS) are answered, never counted
            client = client_key(request.remote_addr or "", request.headers.get(
                "X-Forwarded-For", ""), config.web.trusted_proxies)
            scanners.hit(client, link.id, canary=link.kind == "canary")
            committer.kick()
        g.external_redirect = True  # web.secure leaves this Location as it is
        target = link.url if link.kind == "link" else f"{config.base_url}/"
        return redirect(target, 302)

    app.register_blueprint(bp, url_prefix=prefix or None)
    app.extensions["newsletter.reach"] = committer
    return committer
