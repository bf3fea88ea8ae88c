"""`newsletter preview ISSUE`: the live preview page on 127.0.0.1, a small Flask app under
waitress. The page polls /version and reloads itself when a followed file is saved."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import re
import signal

import jinja2
from flask import Flask, Response, request
from markupsafe import escape

from newsletter.compose.drafts import check_issue_id, draft_path
from newsletter.compose.live_findings import Findings, Key
from newsletter.config import load_config
from newsletter.errors import InputError
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


def cmd_preview(args: argparse.Namespace) -> int:
    from newsletter.cli.compose_commands import (  # commands imports this module to register it
        say,
        warn,
    )
    from newsletter.web.serving import listen

    config = load_config(args.config)
    issue, _, language = args.issue.partition(".")
    check_issue_id(issue)
    first = draft_path(config.issues_dir, issue, language.lower(), config.default_language)
    if not first.exists():
        raise InputError(f"no draft: start one with `newsletter new {args.issue}`",
                         where=str(first))

    def rebuilt(r: Rendered) -> None:
        if r.errors:
            say(f"{r.issue} ({r.language or '?'}): {len(r.errors)} error(s), shown on the page")
        else:
            say(f"rebuilt {r.issue} ({r.language}) in {r.seconds:.1f} s")

    def checked(key: Key, f: Findings) -> None:
        say(f"checked {issue} ({key[1]}) in {f.seconds:.1f} s: {f.error_count} error(s), "
            f"{len(f.problems) - f.error_count} warning(s)")

    preview = LivePreview(args.config, issue, on_rebuild=rebuilt, on_checked=checked)
    server = listen(create_preview_app(preview, host=args.host), args.host, args.port)
    if not _is_loopback(args.host):
        warn(f"{args.host} is not a loopback address: anyone who reaches it reads the drafts "
             "(the preview has no password)")
    start = f"?lang={language.lower()}" if language else ""
    port = getattr(server, "effective_port", args.port)  # several sockets: the asked-for one
    say(f"previewing {issue} ({', '.join(preview.languages(config.default_language))}) at "
        f"http://{_url_host(args.host)}:{port}/{start}; the page follows saved changes to the "
        "drafts, snapshots, templates and newsletter.toml; Ctrl-C stops")
    signal.signal(signal.SIGTERM, _interrupt)  # waitress stops cleanly on KeyboardInterrupt
    with contextlib.suppress(KeyboardInterrupt):  # waitress returns on it, or lets it out
        server.run()
    preview.checker.close()
    say(f"preview of {issue} stopped")
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_preview_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("issue", metavar="ISSUE",
                     help="YYYY-MM (its drafts in issues/); YYYY-MM.LANG opens that edition first")
    cmd.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    cmd.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 picks one)")
