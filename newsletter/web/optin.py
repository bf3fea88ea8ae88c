"""Double opt-in: subscribe requests, their confirm links, abuse limits and who the client is."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter.audience.subscribers import clean_language, clean_name, normalise_address
from newsletter.config import Config
from newsletter.i18n import LANGUAGES
from newsletter.model import normalise_mailbox
from newsletter.store import sqlite as store
from newsletter.store.db import Db

log = logging.getLogger("newsletter.web")
CONFIRM_DAYS = 7


@dataclass(frozen=True)
class SubscribeForm:
    """The subscribe form, validated."""

    email: str
    name: str
    language: str


class FormProblem(ValueError):
    """A field the form refused: FIELD says which (the page says so in the reader's
    language); the message is the validator's, in English, and is never shown."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


def parse_subscribe_form(email: str, name: str, language: str,
                         default_language: str) -> SubscribeForm:
    """Raises FormProblem naming the first field that is not right."""
    field = "email"
    try:
        address = normalise_address(email[:320])
        field = "name"
        clean = clean_name(name[:200])
        field = "language"
        return SubscribeForm(address, clean, page_language(language, default_language))
    except ValueError as exc:
        raise FormProblem(field, str(exc)) from exc


def page_language(raw: str, default_language: str) -> str:
    """A language chosen on a page: one of the six the list offers (a CSV may name others;
    a form that does was not made by our page)."""
    language = clean_language(raw, default_language)
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return language


def client_key(peer: str, forwarded_for: str, trusted: tuple[str, ...]) -> str:
    """Who sent the request, for the per-client limit: the TCP peer, or, when the peer is a
    trusted proxy, the right-most X-Forwarded-For hop that is not one (hops further left
    are whatever the client wrote). IPv6 clients count by /64, the block one host gets."""
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()] if networks else []
    client = peer
    while hops and _is_trusted(client, networks):
        client = hops.pop()
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return "unparseable"
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.version == 6 and not address.is_loopback:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _is_trusted(address: str,
                networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def _mac(secret: str, list_id: str, public_id: str) -> str:
    digest = hmac.new(secret.encode(), f"optin\0{list_id}\0{public_id}".encode(),
                      hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def confirm_token(secret: str, list_id: str, public_id: str) -> str:
    """The confirm link's token: the request's random id and a MAC over it (no address)."""
    return f"{public_id}.{_mac(secret, list_id, public_id)}"


def request_of_token(token: str, secrets_: list[str], list_id: str) -> str | None:
    """The request id a confirm token names, if one of our secrets signed it."""
    public_id, _, mac = token.partition(".")
    if not (public_id and mac and token.isascii()):
        return None
    ok = False
    for secret in secrets_:  # every secret compared, each in constant time
        ok |= hmac.compare_digest(mac, _mac(secret, list_id, public_id))
    return public_id if ok else None


def request_subscription(conn: Db, config: Config, form: SubscribeForm,
                         client: str, now: datetime) -> str:
    """Record the request and queue its confirmation mail when the limits allow: one
    transaction, no mail I/O, the same work for every address. Returns the outcome, which
    the page never shows (it says "check your inbox" whatever happened)."""
    request = store.SubscribeRequest(
        public_id=secrets.token_urlsafe(16), email=form.email,
        mailbox=normalise_mailbox(form.email), name=form.name, language=form.language,
        client=client)
    outcome = store.record_subscribe_request(conn, request, config.web, now)
    if outcome != "queued":
        log.warning("subscribe request for %s from %s: no mail sent (%s)", form.email, client,
                    _WHY[outcome])
    return outcome


_WHY = {
    "suppressed": "the address bounced or complained; only an operator can re-activate it",
    "client-limit": "over [web] per_client_per_hour",
    "address-limit": "a confirmation went to this mailbox within [web] "
                     "confirm_per_address_hours",
    "global-limit": "over [web] global_per_hour",
}


def pending_request(conn: Db, config: Config, token: str, now: datetime,
                    secrets_: list[str]) -> tuple[str, store.OptinRequest] | None:
    """(request id, request) for a genuine, unexpired confirm token; else None."""
    public_id = request_of_token(token, secrets_, config.list_id)
    if public_id is None:
        return None
    found = store.get_optin_request(conn, public_id, now - timedelta(days=CONFIRM_DAYS))
    return (public_id, found) if found else None


def confirm_request(conn: Db, public_id: str, now: datetime) -> bool:
    """Apply a request on its owner's POST; False if it must not (any longer) subscribe."""
    outcome = store.confirm_optin_request(conn, public_id, now - timedelta(days=CONFIRM_DAYS),
                                          now)
    if outcome != "confirmed":
        log.warning("confirm link not applied: %s", outcome)
    return outcome == "confirmed"
