"""Our return addresses: the List-Unsubscribe mailto, the (VERP) envelope sender, and which of
them a received message was sent to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import TYPE_CHECKING, cast
from urllib.parse import quote

from newsletter.audience.tokens import make_id_token, make_token, verify_id_token
from newsletter.errors import InputError

if TYPE_CHECKING:
    from newsletter.config import Config

# Where a message was delivered, most reliable first: Delivered-To (Postfix, Gmail),
# X-Original-To (Postfix), Envelope-To (Exim) carry the envelope recipient, which for a
# bounce is our MAIL FROM (RFC 5321 4.5.5); To and Cc are what the sender wrote.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
LOCAL_PART_MAX = 64  # octets, RFC 5321 4.5.3.1.1

# make_id_token: lower-case base32. MTAs may change the case of a local part, so it is
# matched in any case and lower-cased (base32 has one letter per value in either case).
_VERP_TOKEN_RE = re.compile(r"[a-z2-7]{16,52}")
# "unsubscribe TOKEN" as our mailto's subject, anywhere in the subject ("Re: ...") or in the
# first lines of a body; %20 for clients that do not decode the mailto (RFC 6068 2).
_UNSUBSCRIBE_RE = re.compile(r"(?i)(?<![\w/])unsubscribe(?:\s+|%20)([A-Za-z0-9._~-]{16,400})")
_BODY_LINES = 12


def bounce_address(config: Config) -> str:
    """Where bounces go: [bounces] address, else the From address."""
    return config.bounce_address or config.sender.addr_spec


def unsubscribe_address(config: Config) -> str:
    """Where the mailto unsubscribe goes: [bounces] unsubscribe_address, else the bounce
    address, so that `newsletter bounces` reads it by default."""
    return config.unsubscribe_address or bounce_address(config)


def unsubscribe_mailto(config: Config, token: str) -> str:
    """The mailto: URI of List-Unsubscribe (RFC 2369), the token in its subject.

    In the subject, not the local part: unsubscribe tokens are long and case-sensitive, and
    local parts are limited to 64 octets and lower-cased by some MTAs. Mail clients (Gmail,
    Yahoo, Apple Mail) send a message with exactly this subject to this address.
    """
    return f"mailto:{unsubscribe_address(config)}?subject=" + quote(f"unsubscribe {token}",
                                                                    safe="")


def verp_sender(config: Config, token: str) -> str:
    """The bounce address with the token after a "+": bounces+TOKEN@example.org."""
    local, domain = bounce_address(config).rsplit("@", 1)
    if len(local) + 1 + len(token) > LOCAL_PART_MAX:
        raise InputError(f"VERP address {local}+{token}@{domain} has a local part over "
                         f"{LOCAL_PART_MAX} octets (RFC 5321 4.5.3.1.1); shorten [bounces] "
                         "address")
    return f"{local}+{token}@{domain}"


def verp_subscriber_id(token: str, secrets: list[str], list_id: str) -> int | None:
    """The subscriber id a VERP token was made for, if one of secrets made it."""
    return verify_id_token(secrets, list_id, token.lower())


@dataclass(frozen=True)
class ReturnPaths:
    """One send's per-recipient return addresses; the secret signs both tokens."""

    config: Config
    secret: str

    def mailto(self, email: str) -> str:
        return unsubscribe_mailto(self.config, make_token(self.secret, self.config.list_id,
                                                          email))

    def envelope_sender(self, subscriber_id: int | None = None) -> str:
        """MAIL FROM for one message: the VERP address when [bounces] verp is on and the
        recipient is a subscriber (a test send has none), else the bounce address."""
        if not self.config.verp or subscriber_id is None:
            return bounce_address(self.config)
        return verp_sender(self.config, make_id_token(self.secret, self.config.list_id,
                                                      subscriber_id))


def addressed_token(message: Message, config: Config | None = None) -> tuple[str, str] | None:
    """("verp", token) for a message sent to a VERP address, ("unsubscribe", token) for one
    sent to our mailto unsubscribe; else None. Tokens are not verified here.

    With config, the address must be ours ([bounces] address and unsubscribe_address);
    without, any "+TOKEN" local part and any recipient of an "unsubscribe TOKEN" message
    qualify (the token's MAC, checked by the caller, is what makes it genuine).
    """
    recipients = _recipients(message)
    token = _verp_token(recipients, config)
    if token:
        return "verp", token
    if config is not None and unsubscribe_address(config).lower() not in recipients:
        return None
    token = _unsubscribe_token(message)
    return ("unsubscribe", token) if token else None


def _recipients(message: Message) -> list[str]:
    values = []
    for name in RECIPIENT_HEADERS:
        for value in message.get_all(name) or []:
            values.append(str(value))
    try:
        pairs = getaddresses(values)
    except (ValueError, TypeError, IndexError):  # hostile header values: treat as absent
        return []
    return [addr.strip().lower() for _, addr in pairs if "@" in addr]


def _verp_token(recipients: list[str], config: Config | None) -> str | None:
    ours = bounce_address(config).lower().rsplit("@", 1) if config is not None else None
    for address in recipients:
        local, domain = address.rsplit("@", 1)
        base, plus, token = local.partition("+")
        if not plus or not _VERP_TOKEN_RE.fullmatch(token):
            continue
        if ours is None or [base, domain] == ours:
            return token
    return None


def _unsubscribe_token(message: Message) -> str | None:
    found = _UNSUBSCRIBE_RE.search(_subject(message))
    if found:
        return found.group(1)
    if message.get_content_type() == "multipart/report":
        return None  # a DSN or feedback report quotes others' text: never read as a request
    for line in _first_lines(message):
        found = _UNSUBSCRIBE_RE.search(line)
        if found:
            return found.group(1)
    return None


def _subject(message: Message) -> str:
    raw = message.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))  # RFC 2047 encoded words
    except (ValueError, LookupError, UnicodeError, TypeError):
        return str(raw)


def _first_lines(message: Message) -> list[str]:
    """The first lines of the first text/plain part, quoted lines (a reply's "> ") left out."""
    part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), None)
    if part is None:
        return []
    try:
        payload = cast(bytes, part.get_payload(decode=True)) or b""  # not multipart: bytes
        text = payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError, TypeError):
        return []
    lines = [line for line in text.splitlines() if line.strip()
             and not line.lstrip().startswith(">")]
    return lines[:_BODY_LINES]
