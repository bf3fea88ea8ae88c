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

from newsletter.audience.consent import status_event
from newsletter.audience.subscribers import clean_name
from newsletter.audience.tokens import verification_secrets, verify_token
from newsletter.config import Config
from newsletter.i18n import LANGUAGES, gettext_for
from newsletter.store import sqlite as store
from newsletter.store.db import Db
from newsletter.web.consent import after_confirm, consent_pages, remember_form, unsubscribed_page
from newsletter.web.language import form_problem, reader_language, register_error_pages
from newsletter.web.optin import (
    FormProblem,
    client_key,
    confirm_request,
    page_language,
    parse_subscribe_form,
    pending_request,
    request_subscription,
)
from newsletter.web.pages import Pages

MAX_FORM_BYTES = 16 * 1024  # a form needs a few hundred bytes; every route but webhooks
MAX_BODY_BYTES = 256 * 1024  # waitress refuses more before the app sees it (webhooks' need)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: "
                               "data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # tokens are in our URLs: never leak them onwards
    "Cache-Control": "no-store",
}
Clock = Callable[[], datetime]


def create_app(config: Config, *, clock: Clock = lambda: datetime.now(UTC),
               on_queued: Callable[[], None] = lambda: None) -> Flask:
    """The app, mounted under base_url's path so the links in sent mail resolve here.
    on_queued wakes the mail worker after a subscribe POST (a thread event, no I/O)."""
    app = Flask("newsletter", static_folder=None)
    # Werkzeug refuses larger bodies with 413 before parsing them (MAX_FORM_MEMORY_SIZE:
    # the in-memory form fields; MAX_FORM_PARTS: multipart parts).
    app.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
                      MAX_FORM_PARTS=16)
    app.extensions["newsletter.body_limits"] = {}  # blueprint name -> its own body cap
    prefix = urlsplit(config.base_url).path.rstrip("/")
    _install_hooks(app, config)
    app.register_blueprint(_reader_pages(config, prefix, clock, on_queued),
                           url_prefix=prefix or None)
    register_error_pages(app, Pages(config, prefix).message, config.default_language, prefix)
    app.register_blueprint(consent_pages(config, prefix, clock), url_prefix=prefix or None)
    from newsletter.web.manage import manage_pages  # the reader's data, behind a mailed link

    app.register_blueprint(manage_pages(config, prefix, clock, on_queued),
                           url_prefix=prefix or None)
    _register_blueprints(app, config, prefix)
    return app


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

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

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


def _db(config: Config) -> Db:
    if "db" not in g:
        g.db = store.connect(config.store_path)
    return g.db


def _reader_pages(config: Config, prefix: str, clock: Clock,
                  on_queued: Callable[[], None]) -> Blueprint:
    bp = Blueprint("newsletter", __name__)
    pages = Pages(config, prefix)
    languages = ",".join(LANGUAGES)

    def db() -> Db:
        return _db(config)

    def language(preferred: str = "") -> str:
        """?lang= (the language links on every page), else the subscriber's, else the
        browser's Accept-Language, else the newsletter's default (web_language.py)."""
        return reader_language(request.args.get("lang", ""), preferred,
                               request.accept_languages, config.default_language)

    @bp.get("/")
    @bp.get("/feed.xml")
    @bp.get(f"/<any({languages}):lang>/")
    @bp.get(f"/<any({languages}):lang>/feed.xml")
    def archive(lang: str = "") -> Response:
        """The archive's index pages and Atom feeds, as `newsletter archive` writes them."""
        from newsletter.web.archive import served_file

        found = served_file(config, db(), request.path.removeprefix(prefix))
        if found is None:
            abort(404)
        return Response(found[1], mimetype=found[0])

    @bp.get("/healthz")
    def health() -> str:
        db().execute("SELECT 1")
        return "ok"

    @bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> str | tuple[str, int]:
        email = verify_token(verification_secrets(clock()), config.list_id, token)
        sub = store.get_subscriber(db(), email) if email else None
        lang = language(sub.language if sub else "")
        if email is None:
            return pages.invalid_link(lang)
        # RFC 8058 section 3.2: the one-click POST carries "List-Unsubscribe=One-Click". Any
        # other request (a scanner's GET or HEAD, a POST without that body) only shows the
        # button, which sends exactly that body.
        if request.method != "POST" or request.form.get("List-Unsubscribe") != "One-Click":
            return pages.unsubscribe_form(lang, email, token)
        changed = False
        if sub is not None and sub.status in ("active", "pending"):
            changed = True
            store.set_status(db(), sub.email, "unsubscribed",
                             f"one-click unsubscribe {clock():%Y-%m-%d}")
            status_event(db(), sub.email, "unsubscribed", "unsubscribe link",
                         "one-click unsubscribe", clock())
        return unsubscribed_page(pages, config, lang, email, clock(),  # and "why?" (optional)
                                 ask_why=changed)

    @bp.route("/subscribe", methods=["GET", "POST"])
    def subscribe() -> str | tuple[str, int]:
        lang = language()
        form = {"email": "", "name": "", "chosen_language": lang, "error": ""}
        if request.method != "POST":
            return pages.subscribe_form(lang, **form)
        form.update(email=request.form.get("email", "")[:320],
                    name=request.form.get("name", "")[:200],
                    chosen_language=request.form.get("language", lang)[:20])
        try:
            valid = parse_subscribe_form(form["email"], form["name"], form["chosen_language"],
                                         config.default_language)
        except FormProblem as exc:
            form["error"] = form_problem(lang, exc.field)
            return pages.subscribe_form(lang, **form), 422
        client = client_key(request.remote_addr or "", request.headers.get(
            "X-Forwarded-For", ""), config.web.trusted_proxies)
        request_subscription(db(), config, valid, client, clock())
        remember_form(db(), pages, lang, valid.email, clock())  # the form's language and text
        on_queued()  # called whatever the outcome: the same work for every address
        return pages.check_inbox(lang, valid.email)

    @bp.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> str | tuple[str, int]:
        found = pending_request(db(), config, token, clock(), verification_secrets(clock()))
        lang = language(found[1].language if found else "")
        if found is None:
            return pages.expired_link(lang)
        public_id, req = found
        if request.method != "POST":
            return pages.confirm_form(lang, req.email, req.name, req.language, token)
        before = store.get_subscriber(db(), req.email)
        if not confirm_request(db(), public_id, clock()):
            return pages.expired_link(lang)
        # req.confirmed: a second POST of the same link, which records and sends nothing more
        if not req.confirmed and after_confirm(
                db(), config, public_id, req.email, req.language, req.created_at,
                before is not None and before.status == "active", clock()):
            on_queued()  # the welcome mail, with the latest issue
        _ = gettext_for(lang)
        return pages.message(lang, _("You are subscribed"), _(
            "Thank you: %(email)s will receive the next issue of %(newsletter)s.")
            % {"email": req.email, "newsletter": config.name}, notice=True)

    @bp.route("/preferences/<token>", methods=["GET", "POST"])
    def preferences(token: str) -> str | tuple[str, int]:
        email = verify_token(verification_secrets(clock()), config.list_id, token)
        sub = store.get_subscriber(db(), email) if email else None
        if sub is None:
            return pages.invalid_link(language())
        saved = request.method == "POST"
        if saved:  # the token came in the reader's own mail: proof enough for a profile edit
            field = "name"
            try:
                name = clean_name(request.form.get("name", "")[:200])
                field = "language"
                chosen = page_language(request.form.get("language", "")[:20],
                                       config.default_language)
            except ValueError:
                lang = language(sub.language)
                _ = gettext_for(lang)
                return pages.message(lang, _("Please check the form"),
                                     form_problem(lang, field)), 422
            store.update_profile(db(), sub.email, name, chosen)
            sub = store.get_subscriber(db(), sub.email) or sub
        lang = sub.language if saved and sub.language in LANGUAGES else language(sub.language)
        _ = gettext_for(lang)  # spelled _("..."): `make messages` extracts only that form
        return pages.render(lang, "web/preferences.html.j2", _("Your preferences"),
                            email=sub.email, name=sub.name, chosen_language=sub.language,
                            saved=saved, action=f"{prefix}/preferences/{token}",
                            unsubscribe=f"{prefix}/unsubscribe/{token}",
                            data_link=f"{prefix}/preferences/{token}/data-link")

    @bp.get("/issues/<issue>")
    @bp.get("/issues/<issue>/<lang>")
    def web_view(issue: str, lang: str = "") -> Response:
        """The same page as the static archive's (no personal data, links between languages)."""
        from newsletter.web.archive import edition_page_for

        page = edition_page_for(config, db(), issue, lang or config.default_language)
        if page is None:
            abort(404)
        return Response(page, mimetype="text/html")

    return bp
