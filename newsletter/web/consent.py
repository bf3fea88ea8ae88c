"""The "why?" after an unsubscribe: an optional reason, counted in totals only (nothing in
the answer names the reader). The consent record of a subscribe form is optin_service.py's;
the reader's data (download, delete) is behind a mailed link: manage.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from flask import Blueprint, request

from newsletter.audience.consent import REASONS, stamp
from newsletter.audience.tokens import verification_secrets
from newsletter.config import Config
from newsletter.i18n import gettext_for
from newsletter.store import consent as store_consent
from newsletter.web.pages import Pages
from newsletter.web.site import Site

_HOUR = 3600


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


def consent_pages(site: Site) -> Blueprint:
    bp = Blueprint("consent", __name__)
    config, pages, clock = site.config, site.pages, site.clock

    @bp.post("/unsubscribe-reason")
    def why() -> str:
        lang = site.language()
        ticket = check_ticket(request.form.get("ticket", ""), verification_secrets(clock()),
                              config.list_id, clock())
        reason = request.form.get("reason", "")
        if ticket is not None and reason in REASONS:
            store_consent.count_reason(site.db(), reason, *ticket, stamp(clock()))
        _ = gettext_for(lang)  # the same answer whatever was sent: nothing to probe
        return pages.message(lang, _("Thank you"), _("Thank you for telling us."), notice=True)

    return bp
