"""The live preview page of `newsletter preview ISSUE`: a small Flask app on 127.0.0.1 (the
CLI runs it under waitress). The page polls /version and reloads itself when a followed file
is saved."""

from __future__ import annotations

import re

import jinja2
from flask import Flask, Response, request
from markupsafe import escape

from newsletter.compose.live_findings import Findings
from newsletter.i18n import LANGUAGES, direction
from newsletter.web.live_preview import LivePreview, Rendered

POLL_MS = 700
# The page runs one script of ours (live.js) and nothing else; the frames are other documents.
PAGE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src "
            "'unsafe-inline'; frame-src 'self'; img-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
# The email as a mail client shows it: images from wherever they are (the reader's client
# loads them itself, not through this server), inline style, no script whatever the HTML says
# (no script-src; the frame's sandbox attribute, without allow-scripts, says it again). It stays
# same-origin so the page can make each frame as tall as its email.
EMAIL_CSP = ("default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_HEAD_RE = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def create_preview_app(preview: LivePreview, *, host: str = "127.0.0.1") -> Flask:
    app = Flask("newsletter.preview", static_folder=None)
    # A web page elsewhere can point its own name at 127.0.0.1 (DNS rebinding) and read
    # unpublished drafts unless the Host header is checked: only the bound names are answered.
    allowed = _LOOPBACK_NAMES | {host.lower().strip("[]")}

    @app.before_request
    def known_host() -> Response | None:
        name = (request.host.rsplit(":", 1)[0] if not request.host.startswith("[")
                else request.host[1:].split("]", 1)[0]).lower()
        if name not in allowed:
            return _plain(f"unknown Host {request.host!r}: open the address `newsletter "
                          "preview` printed", 400)
        return None

    @app.get("/")
    def page() -> Response:
        shown = preview.rendered(request.args.get("lang", ""))
        body = _page_html(preview, shown, preview.findings(shown))
        return _respond(body, "text/html; charset=utf-8", PAGE_CSP)

    @app.get("/findings")
    def findings() -> Response:
        """The findings box once check is done: 204 while it runs, 409 for an older page
        (it reloads itself anyway)."""
        shown = preview.rendered(request.args.get("lang", ""))
        if shown.fingerprint != request.args.get("v"):
            return _plain("the files changed: this page reloads", 409)
        found = preview.findings(shown)
        if found is None:
            return _respond("", "text/plain; charset=utf-8", PAGE_CSP, 204)
        body = _page_html(preview, shown, found, "preview/findings.html.j2")
        return _respond(body, "text/html; charset=utf-8", PAGE_CSP)

    @app.get("/email.html")
    def email() -> Response:
        shown = preview.rendered(request.args.get("lang", ""))
        body = shown.html or "<!DOCTYPE html><p>No edition to show: see the errors.</p>"
        # A link opens in a tab of its own, as webmail does; in the frame, most sites would
        # refuse to be shown. Only the served copy has it: the email itself is unchanged.
        body = _HEAD_RE.sub(lambda m: m.group(0) + '<base target="_blank">', body, count=1)
        return _respond(body, "text/html; charset=utf-8", EMAIL_CSP)

    @app.get("/version")
    def version() -> Response:
        return _respond(preview.fingerprint(), "text/plain; charset=utf-8", PAGE_CSP)

    @app.get("/live.js")
    def live_js() -> Response:
        script = (preview.root / "templates" / "preview" / "live.js").read_text(encoding="utf-8")
        return _respond(script.replace("POLL_MS", str(POLL_MS)),
                        "text/javascript; charset=utf-8", PAGE_CSP)

    return app


def _page_html(preview: LivePreview, shown: Rendered, found: Findings | None,
               name: str = "preview/page.html.j2") -> str:
    templates = preview.root / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    context = {"r": shown, "f": found, "languages": [(code, LANGUAGES.get(code, code))
                                         for code in shown.languages],
               "direction": direction(shown.language), "poll_ms": POLL_MS}
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:  # the page's own template: say so in plain HTML
        where = f"{templates / name}:{getattr(exc, 'lineno', '') or ''}"
        return (f'<!DOCTYPE html><html data-version="{shown.fingerprint}"><title>preview'
                f'</title><script src="/live.js"></script><pre>'
                f"{escape(f'{where}: error: {exc.message}')}</pre></html>")


def _respond(body: str, content_type: str, csp: str, status: int = 200) -> Response:
    response = Response(body, status=status, content_type=content_type)
    response.headers.update({"Content-Security-Policy": csp, "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer"})
    return response


def _plain(text: str, status: int) -> Response:
    return _respond(text + "\n", "text/plain; charset=utf-8", PAGE_CSP, status)
