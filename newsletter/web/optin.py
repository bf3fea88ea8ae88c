"""Double opt-in's pieces: the subscribe form, its confirm tokens and who the client is
(optin_service.py applies them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from newsletter.audience.subscribers import clean_language, clean_name, normalise_address
from newsletter.i18n import LANGUAGES

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
