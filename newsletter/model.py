"""The frozen dataclasses several layers pass around (the store returns them), and the rule
that says which inbox an address is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    language: str = ""
    tags: tuple[str, ...] = ()
    status: str = "active"
    reason: str = ""
    id: int = 0


_GMAIL = ("gmail.com", "googlemail.com")


def normalise_mailbox(email: str) -> str:
    """The mailbox an address delivers to, as the per-address cap counts it: lower-case, no
    +tag (for every domain), and for Gmail no dots and googlemail.com as gmail.com (Gmail
    ignores both, so "a.b+x@gmail.com" and "ab@gmail.com" are one inbox)."""
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


@dataclass(frozen=True)
class CachedFeed:
    etag: str | None
    last_modified: str | None
    body: bytes


@dataclass(frozen=True)
class Edition:
    """One language edition of one issue, inlined, with per-recipient placeholders left in."""

    issue: str
    language: str
    subject: str
    preheader: str
    html: str
    text: str
    fallback_name: str  # used where a subscriber has no name ("Dear reader")


@dataclass(frozen=True)
class Delivery:
    """One claimed ledger row (state `sending`): who gets which frozen edition of an issue."""

    issue: str  # the ledger key: YYYY-MM, or YYYY-MM+LANG for a late edition's rows
    subscriber_id: int
    email: str
    name: str
    language: str  # the edition's
    attempts: int  # this one included
    reader_language: str = ""  # the subscriber's own, which the edition may not be in
    variant: str = ""  # the frozen variant of the edition for a segment ("": the plain one)
    first_deferred_at: datetime | None = None  # the first 4xx, for the retry period


@dataclass(frozen=True)
class Settle:
    """The outcome to record for a claimed row: sent, failed, unknown, deferred or pending.
    deliver.ledger.resolve fills retry_at and first_deferred_at of a deferral (or turns it
    into failed when the retry period is over) before the store writes it."""

    delivery: Delivery
    state: str
    reply: str
    message_id: str = ""
    retry_at: datetime | None = None
    first_deferred_at: datetime | None = None
