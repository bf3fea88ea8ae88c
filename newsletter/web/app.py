"""`newsletter serve`: one-click unsubscribe (RFC 8058), double opt-in, preferences, web view.

A small Flask app served by waitress. Every page works without JavaScript or cookies. Only
a POST changes anything (GET, HEAD and OPTIONS render); every change is committed before
the response is sent; no request waits on mail (the confirmation goes through mailqueue).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Flask, Response, abort, g, request

from newsletter.config import Config
from newsletter.store.handles import StoreHandles
from newsletter.web.archive_routes import add_archive_routes
from newsletter.web.consent import consent_pages
from newsletter.web.language import register_error_pages
from newsletter.web.manage import manage_pages
from newsletter.web.optin_routes import add_optin_routes
from newsletter.web.reader_routes import add_reader_routes
from newsletter.web.site import Clock, Site, app_handles, close_request_db

MAX_FORM_BYTES = 16 * 1024  # a form needs a few hundred bytes; every route but webhooks
MAX_BODY_BYTES = 256 * 1024  # waitress refuses more before the app sees it (webhooks' need)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: "
                               "data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # frame-ancestors says it to every current browser; older ones (and some embedded
    # views) know only X-Frame-Options (RFC 7034). No page of serve is framed by design.
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # tokens are in our URLs: never leak them onwards
    "Cache-Control": "no-store",
}


def create_app(config: Config, *, clock: Clock = lambda: datetime.now(UTC),
               on_queued: Callable[[], None] = lambda: None,
               handles: StoreHandles | None = None) -> Flask:
    """The app, mounted under base_url's path so the links in sent mail resolve here.
    on_queued wakes the mail worker after a subscribe POST (a thread event, no I/O).
    handles: serve's database handles for the whole process (site.app_handles)."""
    app = Flask("newsletter", static_folder=None)
    # Werkzeug refuses larger bodies with 413 before parsing them (MAX_FORM_MEMORY_SIZE:
    # the in-memory form fields; MAX_FORM_PARTS: multipart parts).
    app.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
                      MAX_FORM_PARTS=16)
    app.extensions["newsletter.body_limits"] = {}  # blueprint name -> its own body cap
    site = Site(config, urlsplit(config.base_url).path.rstrip("/"), clock, on_queued,
                app_handles(app, config, handles))
    mount = site.prefix or None
    _install_hooks(app, config)
    app.register_blueprint(_reader_pages(site), url_prefix=mount)
    register_error_pages(app, site.pages.message, config.default_language, site.prefix)
    app.register_blueprint(consent_pages(site), url_prefix=mount)
    app.register_blueprint(manage_pages(site), url_prefix=mount)  # behind a mailed link
    _register_blueprints(app, config, site.prefix)
    return app


def _reader_pages(site: Site) -> Blueprint:
    """The pages a reader reaches from our mail and site, in one blueprint ("newsletter")."""
    bp = Blueprint("newsletter", __name__)
    add_archive_routes(bp, site)  # /, /feed.xml, /LANG/, /issues/..., /healthz
    add_reader_routes(bp, site)  # /unsubscribe/<token>, /preferences/<token>
    add_optin_routes(bp, site)  # /subscribe, /confirm/<token>
    return bp


def _register_blueprints(app: Flask, config: Config, prefix: str) -> None:
    """Other parts of serve mount here (provider webhooks). A blueprint that takes bodies
    larger than a form sets app.extensions["newsletter.body_limits"][bp.name] = N (at most
    MAX_BODY_BYTES, waitress's own cap)."""
    from newsletter.web.webhooks import register_webhooks  # only when serving: SNS, crypto

    register_webhooks(app, config)  # /webhooks/<secret>/...; absent without the secret
    from newsletter.web.redirect import register_redirects

    register_redirects(app, config, prefix)  # /r/<id>: counted links (newsletter.links)


def _install_hooks(app: Flask, config: Config) -> None:
    origin = urlsplit(config.base_url)

    @app.before_request
    def cap_body() -> None:
        limit = app.extensions["newsletter.body_limits"].get(request.blueprint, MAX_FORM_BYTES)
        request.max_content_length = limit
        if (request.content_length or 0) > limit:
            abort(413)  # before anything reads the body

    @app.before_request
    def refuse_cross_site_posts() -> None:
        # A hostile page could post a reader's forms from the reader's own browser (CSRF):
        # change or erase their data. Browsers say where a POST
        # comes from (Sec-Fetch-Site, else Origin); clients that say nothing pass. Exempt:
        # RFC 8058's one-click POST (sent by mail providers from anywhere), the webhooks, and
        # the sign-up form, which publishers put on their own sites (another host): double
        # opt-in and the per-address and per-network limits are what protect a victim there.
        if request.method != "POST" or request.blueprint == "webhooks" \
                or request.endpoint in ("newsletter.unsubscribe", "newsletter.subscribe"):
            return
        site = request.headers.get("Sec-Fetch-Site")
        sender = request.headers.get("Origin")
        if site is not None:
            if site not in ("same-origin", "none"):
                abort(403)
        elif sender is not None and urlsplit(sender).netloc not in (origin.netloc, request.host):
            abort(403)  # "null" (sandboxed or privacy-hidden) has no netloc: refused too

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        close_request_db()

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(_SECURITY_HEADERS)
        location = response.headers.get("Location")
        if location and 300 <= response.status_code < 400 and not g.get("external_redirect"):
            # Werkzeug builds the slash redirect from the request's Host header, which the
            # client chose: point it at our own base_url instead.
            parts = urlsplit(location)
            response.headers["Location"] = urlunsplit(
                (origin.scheme, origin.netloc, parts.path, parts.query, ""))
        return response
