"""The frozen dataclasses several layers pass around (the store returns them), and the rule
that says which inbox an address is."""

from __future__ import annotations

from dataclasses import dataclass


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
