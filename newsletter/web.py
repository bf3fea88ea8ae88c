"""`newsletter serve`: one-click unsubscribe (RFC 8058), double opt-in, preferences, web view.

A small Flask app served by waitress. Every page works without JavaScript or cookies; every
state change is committed before the response is sent.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

import jinja2
from flask import Blueprint, Flask, Response, abort, g, request

from newsletter import store
from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.i18n import LANGUAGES, direction, gettext_for, translations
from newsletter.subscribers import clean_language, clean_name, normalise_address
from newsletter.tokens import (
    confirm_token_issued,
    make_confirm_token,
    secret_from_env,
    verification_secrets,
    verify_confirm_token,
    verify_token,
)

log = logging.getLogger("newsletter.web")
CONFIRM_DAYS = 7
CONFIRM_RESEND_GAP = timedelta(minutes=10)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: "
                               "data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # tokens are in our URLs: never leak them onwards
    "Cache-Control": "no-store",
}


def create_app(config: Config, *, send_mail: Callable[[str, bytes], None] | None = None,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Flask:
    """The app, mounted under base_url's path so the links in sent mail resolve here."""
    app = Flask("newsletter", static_folder=None)
    prefix = urlsplit(config.base_url).path.rstrip("/")
    pages = _Pages(config, prefix)
    mail = send_mail or _transport_sender(config)
    bp = Blueprint("newsletter", __name__)

    def db() -> sqlite3.Connection:
        if "db" not in g:
            g.db = store.connect(config.store_path)
        return g.db

    @app.teardown_appcontext
    def close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(_SECURITY_HEADERS)
        return response

    @bp.get("/")
    @bp.get("/feed.xml")
    @bp.get(f"/<any({','.join(LANGUAGES)}):language>/")
    @bp.get(f"/<any({','.join(LANGUAGES)}):language>/feed.xml")
    def archive(language: str = "") -> Response:
        """The archive's index pages and Atom feeds, as `newsletter archive` writes them."""
        from newsletter.archive import served_file

        found = served_file(config, db(), request.path.removeprefix(prefix))
        if found is None:
            abort(404)
        mimetype, body = found
        return Response(body, mimetype=mimetype)

    @bp.get("/healthz")
    def health() -> str:
        db().execute("SELECT 1")
        return "ok"

    def language(preferred: str = "") -> str:
        """?lang= (the language links on every page), else the subscriber's, else the
        browser's Accept-Language, else the newsletter's default."""
        for choice in (request.args.get("lang", ""), preferred):
            if choice in LANGUAGES:
                return choice
        return request.accept_languages.best_match(LANGUAGES) or config.default_language

    @bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> Response | str | tuple[str, int]:
        email = verify_token(verification_secrets(clock()), config.list_id, token)
        sub = store.get_subscriber(db(), email) if email else None
        lang = language(sub.language if sub else "")
        _ = gettext_for(lang)
        if email is None:
            return pages.invalid_link(lang)
        if request.method == "GET":  # link scanners fetch with GET: show a button, change nothing
            return pages.render(lang, "web/unsubscribe.html.j2", _("Unsubscribe"), email=email,
                                action=f"{prefix}/unsubscribe/{token}",
                                preferences=f"{prefix}/preferences/{token}")
        _unsubscribe(db(), email, clock())
        return pages.message(lang, _("You are unsubscribed"), _(
            "%(email)s will not receive %(newsletter)s any more.")
            % {"email": email, "newsletter": config.name}, notice=True)

    @bp.route("/subscribe", methods=["GET", "POST"])
    def subscribe() -> str | tuple[str, int]:
        lang = language()
        _ = gettext_for(lang)
        form = {"email": "", "name": "", "chosen_language": lang, "error": ""}
        if request.method == "GET":
            return pages.subscribe_form(lang, **form)
        form.update(email=request.form.get("email", "")[:320],
                    name=request.form.get("name", "")[:200],
                    chosen_language=request.form.get("language", lang))
        try:
            email = normalise_address(form["email"])
            name = clean_name(form["name"])
            chosen = clean_language(form["chosen_language"], config.default_language)
        except ValueError as exc:
            form["error"] = _("Please check the form: %(problem)s") % {"problem": exc}
            return pages.subscribe_form(lang, **form), 422
        if _start_opt_in(db(), config, email, name, chosen, clock(), mail) is False:
            return pages.message(lang, _("Please try again later"),
                                 _("We could not send the confirmation email just now.")), 503
        return pages.message(lang, _("Check your inbox"), _(
            "If %(email)s can subscribe, a confirmation email is on its way. Open the link "
            "in it within %(days)d days to confirm.") % {"email": email, "days": CONFIRM_DAYS},
            notice=True)

    @bp.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> str | tuple[str, int]:
        email = verify_confirm_token(verification_secrets(clock()), config.list_id, token,
                                     clock(), CONFIRM_DAYS * 86400)
        sub = store.get_subscriber(db(), email) if email else None
        lang = language(sub.language if sub else "")
        _ = gettext_for(lang)
        if email is None:
            return pages.message(lang, _("This link has expired or is not valid"),
                                 _("Subscribe again to get a new confirmation email."),
                                 link=f"{prefix}/subscribe?lang={lang}",
                                 link_text=_("Subscribe")), 400
        if request.method == "GET":
            return pages.render(lang, "web/confirm.html.j2", _("Confirm your subscription"),
                                email=email, action=f"{prefix}/confirm/{token}")
        if not _activate(db(), email, clock(), confirm_token_issued(token) or clock()):
            return pages.message(lang, _("This link has expired or is not valid"),
                                 _("Subscribe again to get a new confirmation email."),
                                 link=f"{prefix}/subscribe?lang={lang}",
                                 link_text=_("Subscribe")), 400
        return pages.message(lang, _("You are subscribed"), _(
            "Thank you: %(email)s will receive the next issue of %(newsletter)s.")
            % {"email": email, "newsletter": config.name}, notice=True)

    @bp.route("/preferences/<token>", methods=["GET", "POST"])
    def preferences(token: str) -> str | tuple[str, int]:
        email = verify_token(verification_secrets(clock()), config.list_id, token)
        sub = store.get_subscriber(db(), email) if email else None
        if sub is None:
            return pages.invalid_link(language())
        saved = False
        if request.method == "POST":
            try:
                name = clean_name(request.form.get("name", "")[:200])
                chosen = clean_language(request.form.get("language", ""),
                                        config.default_language)
            except ValueError as exc:
                lang = language(sub.language)
                return pages.message(lang, gettext_for(lang)("Please check the form"),
                                     str(exc)), 422
            store.update_profile(db(), sub.email, name, chosen)
            sub, saved = store.get_subscriber(db(), sub.email), True
        lang = sub.language if saved and sub.language in LANGUAGES else language(sub.language)
        return pages.render(lang, "web/preferences.html.j2", gettext_for(lang)("Your preferences"),
                            email=sub.email, name=sub.name, chosen_language=sub.language,
                            saved=saved, action=f"{prefix}/preferences/{token}",
                            unsubscribe=f"{prefix}/unsubscribe/{token}")

    @bp.get("/issues/<issue>")
    @bp.get("/issues/<issue>/<language>")
    def web_view(issue: str, language: str = "") -> Response:
        """The same page as the static archive's (no personal data, links between languages)."""
        from newsletter.archive import edition_page_for

        page = edition_page_for(config, db(), issue, language or config.default_language)
        if page is None:
            abort(404)
        return Response(page, mimetype="text/html")

    app.register_blueprint(bp, url_prefix=prefix or None)
    return app


def _unsubscribe(conn: sqlite3.Connection, email: str, now: datetime) -> None:
    """Idempotent: a second POST, or an address we no longer know, is fine too."""
    sub = store.get_subscriber(conn, email)
    if sub is not None and sub.status in ("active", "pending"):
        store.set_status(conn, sub.email, "unsubscribed", f"one-click unsubscribe {now:%Y-%m-%d}")


def _activate(conn: sqlite3.Connection, email: str, now: datetime, issued: datetime) -> bool:
    """Confirm a subscription; False if this link must not (any longer) subscribe anyone:
    the address complained about us, or left after the link was sent."""
    row = conn.execute("SELECT status, updated_at FROM subscribers WHERE email = ?",
                       (email,)).fetchone()
    if row is None:
        from newsletter.subscribers import Subscriber

        store.upsert_subscribers(conn, [Subscriber(email=email)])
    else:
        left_later = (row["status"] == "unsubscribed"
                      and datetime.fromisoformat(row["updated_at"]) > issued)
        if row["status"] == "complained" or left_later:
            return False
    store.set_status(conn, email, "active", f"confirmed double opt-in {now:%Y-%m-%d}")
    return True


def _start_opt_in(conn: sqlite3.Connection, config: Config, email: str, name: str,
                  language: str, now: datetime, mail: Callable[[str, bytes], None]) -> bool:
    """Record a pending subscriber and email the confirm link. Nothing is sent to an address
    that is already active or got a link minutes ago; the page says the same either way, so
    the form does not reveal who is subscribed."""
    sub = store.get_subscriber(conn, email)
    if sub is not None and sub.status in ("active", "complained"):
        return True  # nothing to confirm, or someone who reported us as spam: never mailed
    if not store.mark_confirm_sent(conn, email, name, language, now, CONFIRM_RESEND_GAP):
        return True
    secret, _ = secret_from_env()
    link = f"{config.base_url}/confirm/{make_confirm_token(secret, config.list_id, email, now)}"
    try:
        mail(email, confirmation_email(config, email, name, link, now, language))
    except NewsletterError as exc:
        log.error("confirmation email to %s not sent: %s", email, exc)
        store.clear_confirm_sent(conn, email)
        return False
    return True


def confirmation_email(config: Config, email: str, name: str, link: str, now: datetime,
                       language: str = "") -> bytes:
    """The double opt-in email, plain text, in the language the reader chose."""
    language = language if language in LANGUAGES else config.default_language
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(config.templates_dir),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(language), newstyle=True)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = config.sender
    msg["To"] = email
    msg["Subject"] = gettext_for(language)("Please confirm your subscription to "
                                           "%(newsletter)s") % {"newsletter": config.name}
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=config.sender_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = language
    msg.set_content(env.get_template("web/confirm_email.txt.j2").render(
        newsletter=config, email=email, name=name, confirm_url=link, days=CONFIRM_DAYS,
        organisation=config.text_in("organisation", language)))
    return msg.as_bytes()


def _transport_sender(config: Config) -> Callable[[str, bytes], None]:
    from newsletter.send import Transports

    def send(email: str, data: bytes) -> None:
        transport = Transports(config).make()
        try:
            outcome = transport.send(config.sender.addr_spec, email, data)
        finally:
            transport.close()
        if outcome.kind != "sent":
            raise NewsletterError(f"relay answered {outcome.reply}", where=email)
    return send


class _Pages:
    """Renders the web pages with the newsletter's look, in the reader's language."""

    def __init__(self, config: Config, prefix: str) -> None:
        self.config, self.prefix = config, prefix
        self.envs: dict[str, jinja2.Environment] = {}

    def _env(self, lang: str) -> jinja2.Environment:
        if lang not in self.envs:
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.config.templates_dir),
                                     autoescape=True, undefined=jinja2.StrictUndefined,
                                     extensions=["jinja2.ext.i18n"])
            env.install_gettext_translations(translations(lang), newstyle=True)
            self.envs[lang] = env
        return self.envs[lang]

    def render(self, lang: str, template: str, title: str, **context: object) -> str:
        context.setdefault("here", request.path)  # where the language links lead
        return self._env(lang).get_template(template).render(
            newsletter=self.config, prefix=self.prefix, title=title, language=lang,
            direction=direction(lang), languages=LANGUAGES.items(),
            organisation=self.config.text_in("organisation", lang), **context)

    def message(self, lang: str, title: str, text: str, *, notice: bool = False,
                link: str = "", link_text: str = "", **context: object) -> str:
        return self.render(lang, "web/message.html.j2", title, text=text, notice=notice,
                           link=link, link_text=link_text, **context)

    def invalid_link(self, lang: str) -> tuple[str, int]:
        """One answer for every bad token: tampered, foreign, truncated or garbage."""
        _ = gettext_for(lang)
        return self.message(lang, _("This link is not valid"),
                            _("Please use the link from your most recent email, or write to "
                              "us."), link=f"{self.prefix}/subscribe?lang={lang}",
                            link_text=_("Subscribe"), here=f"{self.prefix}/subscribe"), 400

    def subscribe_form(self, lang: str, **form: str) -> str:
        title = gettext_for(lang)("Subscribe to %(newsletter)s") % {"newsletter":
                                                                    self.config.name}
        return self.render(lang, "web/subscribe.html.j2", title,
                           action=f"{self.prefix}/subscribe?lang={lang}", **form)


def serve(config: Config, host: str, port: int, *, threads: int = 4) -> None:
    """Run the app with waitress until interrupted."""
    from waitress import serve as waitress_serve

    waitress_serve(create_app(config), host=host, port=port, threads=threads,
                   ident="newsletter", trusted_proxy=None)
