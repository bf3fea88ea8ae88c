"""What the reader's pages do, without the web: subscribe and confirm (double opt-in, with
its consent record), one-click unsubscribe and the profile edit. No Flask and no SQL here:
the routes parse the request and render the answer, the store writes."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Literal

from newsletter.audience.consent import event, forget_key, forget_keys, stamp, status_event
from newsletter.audience.subscribers import clean_name
from newsletter.audience.tokens import verification_secrets, verify_token
from newsletter.config import Config
from newsletter.model import Subscriber, normalise_mailbox
from newsletter.store import consent as store_consent
from newsletter.store import optin as store_optin
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.web.optin import (
    CONFIRM_DAYS,
    FormProblem,
    SubscribeForm,
    page_language,
    request_of_token,
)

log = logging.getLogger("newsletter.web")
Confirmed = Literal["expired", "subscribed", "welcomed"]
_WHY = {
    "suppressed": "the address bounced or complained; only an operator can re-activate it",
    "client-limit": "over [web] per_client_per_hour",
    "address-limit": "a confirmation went to this mailbox within [web] "
                     "confirm_per_address_hours",
    "global-limit": "over [web] global_per_hour",
}


def reader_of(db: Db, config: Config, token: str,
              now: datetime) -> tuple[str | None, Subscriber | None]:
    """The address an unsubscribe token names (None: not a token of ours), and its
    subscriber (None: not on the list)."""
    email = verify_token(verification_secrets(now), config.list_id, token)
    return email, store_subscribers.get_subscriber(db, email) if email else None


def unsubscribe(db: Db, sub: Subscriber | None, now: datetime) -> bool:
    """The one-click unsubscribe; True if it changed anything (an active or pending reader)."""
    if sub is None or sub.status not in ("active", "pending"):
        return False
    store_subscribers.set_status(db, sub.email, "unsubscribed",
                                 f"one-click unsubscribe {now:%Y-%m-%d}")
    status_event(db, sub.email, "unsubscribed", "unsubscribe link", "one-click unsubscribe",
                 now)
    return True


def save_profile(db: Db, default_language: str, sub: Subscriber, name: str,
                 language: str) -> Subscriber:
    """The preferences form: the token came in the reader's own mail, proof enough for a
    profile edit. Raises FormProblem naming the first field that is not right."""
    field = "name"
    try:
        clean = clean_name(name[:200])
        field = "language"
        chosen = page_language(language[:20], default_language)
    except ValueError as exc:
        raise FormProblem(field, str(exc)) from exc
    store_subscribers.update_profile(db, sub.email, clean, chosen)
    return store_subscribers.get_subscriber(db, sub.email) or sub


def subscribe(db: Db, config: Config, form: SubscribeForm, client: str, page_lang: str,
              blank_form: str, now: datetime) -> str:
    """A valid subscribe form: the request and its consent record (BLANK_FORM: the page's
    form, empty, in PAGE_LANG). Returns the outcome, which the page never shows."""
    public_id = secrets.token_urlsafe(16)
    outcome = request_subscription(db, config, form, client, now, public_id)
    if outcome == "queued":  # only a request whose link was mailed can be confirmed
        remember_form(db, page_lang, public_id, blank_form, now)
    return outcome


def request_subscription(db: Db, config: Config, form: SubscribeForm,
                         client: str, now: datetime, public_id: str = "") -> str:
    """Record the request (its id: PUBLIC_ID, else a new random one) and queue its
    confirmation mail when the limits allow: one transaction, no mail I/O. Returns the
    outcome, which the page never shows (it says "check your inbox" whatever happened)."""
    request = store_optin.SubscribeRequest(
        public_id=public_id or secrets.token_urlsafe(16), email=form.email,
        mailbox=normalise_mailbox(form.email), name=form.name, language=form.language,
        client=client)
    outcome = store_optin.record_subscribe_request(db, request, config.web, now)
    if outcome != "queued":
        log.warning("subscribe request for %s from %s: no mail sent (%s)", form.email, client,
                    _WHY[outcome])
    return outcome


def form_text(html: str) -> str:
    """The words a page shows: tags and the style sheet gone, white space collapsed."""
    html = re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", html)
    return " ".join(re.sub(r"<[^>]*>", " ", html).split())


def remember_form(db: Db, lang: str, public_id: str, blank_form: str, now: datetime) -> None:
    """After a subscribe POST: which form, in which language and text version, request
    PUBLIC_ID came from (the version is a hash of the words the blank form shows in that
    language). For this request only: a stranger's POST for an address whose own request
    is pending (no mail: over confirm_per_address_hours) must not rewrite the form that
    request names, or the consent record would say the reader agreed to a page they never
    saw."""
    text = form_text(blank_form)
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    store_consent.remember_form(db, public_id, lang, version, text, stamp(now))


def pending_request(db: Db, config: Config, token: str,
                    now: datetime) -> tuple[str, store_optin.OptinRequest] | None:
    """(request id, request) for a genuine, unexpired confirm token; else None."""
    public_id = request_of_token(token, verification_secrets(now), config.list_id)
    if public_id is None:
        return None
    found = store_optin.get_optin_request(db, public_id, now - timedelta(days=CONFIRM_DAYS))
    return (public_id, found) if found else None


def confirm(db: Db, config: Config, public_id: str, req: store_optin.OptinRequest,
            now: datetime) -> Confirmed:
    """The confirm link's POST: "expired" if it must not (any longer) subscribe, else
    "welcomed" when a welcome mail was queued. A second POST of the same link
    (req.confirmed) records and sends nothing more."""
    before = store_subscribers.get_subscriber(db, req.email)
    outcome = store_optin.confirm_optin_request(db, public_id, now - timedelta(days=CONFIRM_DAYS),
                                          now)
    if outcome != "confirmed":
        log.warning("confirm link not applied: %s", outcome)
        return "expired"
    if not req.confirmed and after_confirm(
            db, config, public_id, req.email, req.language, req.created_at,
            before is not None and before.status == "active", now):
        return "welcomed"
    return "subscribed"


def after_confirm(db: Db, config: Config, public_id: str, email: str,
                  language: str, requested_at: datetime, was_active: bool,
                  now: datetime) -> bool:
    """A confirmed opt-in: its history event (the form's language and text version), any
    forgotten mark lifted (the reader asked to join again themselves), and the welcome mail
    queued for a reader who was not active before. True if a welcome was queued."""
    form = store_consent.form_of(db, public_id)
    shown = f"form in {form[0]}, text version {form[1]}" if form else "form"
    asked = requested_at.astimezone(config.timezone)  # the zone `subscribers show` uses
    detail = (f"{shown}; asked {asked:%Y-%m-%d %H:%M %Z}".rstrip() + ", confirmed by the link "
              "mailed to the address")
    key = forget_key(verification_secrets(now)[0], config.list_id, email)
    return store_consent.record_confirmation(
        db, event(email, "subscribed", "web form", detail, now), public_id,
        forget_keys(config, email, now), None if was_active else (key, language))
