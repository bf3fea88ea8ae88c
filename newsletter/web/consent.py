"""The "why?" after an unsubscribe (totals only) and the consent record of a confirmed
subscribe form. The reader's data (download, delete) is behind a mailed link: web_manage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, g, request

from newsletter.audience.consent import event, forget_key, forget_keys, stamp
from newsletter.audience.tokens import verification_secrets
from newsletter.cli.audience_commands import REASONS
from newsletter.config import Config
from newsletter.i18n import gettext_for
from newsletter.store import consent as store_consent
from newsletter.store import sqlite as store
from newsletter.store.db import Db
from newsletter.web.language import reader_language
from newsletter.web.pages import Pages

Clock = Callable[[], datetime]
_HOUR = 3600


def _db(config: Config) -> Db:
    if "db" not in g:  # the same per-request connection as web.py's (closed at teardown)
        g.db = store.connect(config.store_path)
    return g.db


def reason_labels(lang: str) -> list[tuple[str, str]]:
    _ = gettext_for(lang)
    labels = {
        "too-often": _("I get too many emails"),
        "not-relevant": _("The content is not relevant to me"),
        "never-signed-up": _("I did not sign up for this"),
        "read-elsewhere": _("I read it somewhere else"),
        "other": _("Another reason"),
    }
    return [(r, labels[r]) for r in REASONS]


def _ticket_mac(secret: str, list_id: str, nonce: str, hour: int) -> str:
    digest = hmac.new(secret.encode(), f"why\0{list_id}\0{nonce}\0{hour}".encode(),
                      hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_ticket(secret: str, list_id: str, now: datetime) -> str:
    """What the reason form carries instead of the reader: a random nonce and the hour,
    signed; one answer per ticket, for two hours. Nothing in it names the reader."""
    nonce, hour = secrets.token_urlsafe(12), int(now.timestamp()) // _HOUR
    return f"{nonce}.{hour}.{_ticket_mac(secret, list_id, nonce, hour)}"


def check_ticket(ticket: str, secrets_: list[str], list_id: str,
                 now: datetime) -> tuple[str, str] | None:
    """(nonce, expiry) of a genuine, unexpired ticket; else None."""
    nonce, _, rest = ticket.partition(".")
    hour, _, mac = rest.partition(".")
    if not (nonce and hour.isdigit() and mac and ticket.isascii() and len(ticket) < 100):
        return None
    if not 0 <= int(now.timestamp()) // _HOUR - int(hour) <= 1:
        return None
    ok = False
    for secret in secrets_:  # every secret compared, each in constant time
        ok |= hmac.compare_digest(mac, _ticket_mac(secret, list_id, nonce, int(hour)))
    expires = datetime.fromtimestamp((int(hour) + 2) * _HOUR, UTC)
    return (nonce, stamp(expires)) if ok else None


def unsubscribed_page(pages: Pages, config: Config, lang: str, email: str,
                      now: datetime, *, ask_why: bool = True) -> str:
    """The answer to an unsubscribe POST, with the one optional question: asked only when
    this POST unsubscribed the reader (one answer per unsubscribe, so repeating the POST
    cannot stuff the totals)."""
    _ = gettext_for(lang)
    text = _("%(email)s will not receive %(newsletter)s any more.") % {
        "email": email, "newsletter": config.name}
    return pages.render(lang, "web/unsubscribed.html.j2", _("You are unsubscribed"), text=text,
                        reasons=reason_labels(lang),
                        ticket=make_ticket(verification_secrets(now)[0], config.list_id, now)
                        if ask_why else "",
                        why_action=f"{pages.prefix}/unsubscribe-reason?lang={lang}")


def form_text(html: str) -> str:
    """The words a page shows: tags and the style sheet gone, white space collapsed."""
    html = re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", html)
    return " ".join(re.sub(r"<[^>]*>", " ", html).split())


def remember_form(conn: Db, pages: Pages, lang: str, email: str,
                  now: datetime) -> None:
    """After a subscribe POST: which form, in which language and text version, the request
    came from (the version is a hash of the words the blank form shows in that language).
    Only for a request whose confirmation was queued; the same work for every address."""
    text = form_text(pages.subscribe_form(lang, email="", name="", chosen_language=lang,
                                          error=""))
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    public_id = store_consent.latest_queued_request(conn, email)
    if public_id:
        store_consent.remember_form(conn, public_id, lang, version, text, stamp(now))


def after_confirm(conn: Db, config: Config, public_id: str, email: str,
                  language: str, requested_at: datetime, was_active: bool,
                  now: datetime) -> bool:
    """A confirmed opt-in: its history event (the form's language and text version), any
    forgotten mark lifted (the reader asked to join again themselves), and the welcome mail
    queued for a reader who was not active before. True if a welcome was queued."""
    form = store_consent.form_of(conn, public_id)
    shown = f"form in {form[0]}, text version {form[1]}" if form else "form"
    asked = requested_at.astimezone(config.timezone)  # the zone `subscribers show` uses
    detail = (f"{shown}; asked {asked:%Y-%m-%d %H:%M %Z}".rstrip() + ", confirmed by the link "
              "mailed to the address")
    key = forget_key(verification_secrets(now)[0], config.list_id, email)
    return store_consent.record_confirmation(
        conn, event(email, "subscribed", "web form", detail, now), public_id,
        forget_keys(config, email, now), None if was_active else (key, language))


def consent_pages(config: Config, prefix: str, clock: Clock) -> Blueprint:
    bp = Blueprint("consent", __name__)
    pages = Pages(config, prefix)

    def language(preferred: str = "") -> str:
        return reader_language(request.args.get("lang", ""), preferred,
                               request.accept_languages, config.default_language)

    @bp.post("/unsubscribe-reason")
    def why() -> str:
        lang = language()
        ticket = check_ticket(request.form.get("ticket", ""), verification_secrets(clock()),
                              config.list_id, clock())
        reason = request.form.get("reason", "")
        if ticket is not None and reason in REASONS:
            store_consent.count_reason(_db(config), reason, *ticket, stamp(clock()))
        _ = gettext_for(lang)  # the same answer whatever was sent: nothing to probe
        return pages.message(lang, _("Thank you"), _("Thank you for telling us."), notice=True)

    return bp
