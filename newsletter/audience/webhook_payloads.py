"""What the provider payload parsers share (ses_, postmark_ and mailgun_payload): the error for
a garbled payload, field readers, and the verdict on one failed recipient. All pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.bounce_text import codes
from newsletter.audience.dsn import Recipient, Report
from newsletter.errors import InputError


class MalformedPayload(InputError):
    """A payload of a known type that lacks or garbles the fields its documentation promises."""


_VAGUE = ("undefined", "onhold")  # bounce_rules' reasons when the words say nothing definite


def address_of(value: object) -> str:
    """A recipient address from a payload: one addr-spec, lower case; malformed otherwise."""
    if not isinstance(value, str):
        raise MalformedPayload("a recipient address is missing")
    address = value.strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > 320 \
            or re.search(r"[\s\x00-\x1f\x7f<>,;\"\\]", address):
        raise MalformedPayload(f"not an email address: {value[:80]!r}")
    return address


def judge(provider: tuple[str, str], text: str, *, status: str = "", code: int = 0,
          action: str = "") -> tuple[str, str, str]:
    """(class, reason, status) of one failed recipient.

    provider is the provider's own (class, reason). Where it quotes the receiving server, the
    return path's rules (bounce_rules) decide as for a DSN: a refusal that blames us is `ours`
    even in a "Permanent" bounce, a vacation or delay is `none`, a definite reason wins;
    words that say nothing leave the provider's verdict, except that an RFC 3463 4.X.X status
    is never hard.
    """
    klass, reason = provider
    quoted_status, quoted_code = codes(text)
    status, code = status or quoted_status, code or quoted_code
    if klass not in ("hard", "soft") or not (text or status):
        return klass, reason, status
    found, why = refusal_class(text, status=status, code=code, action=action)
    if found in ("ours", "none") or (why not in _VAGUE and found in ("hard", "soft")):
        return found, why, status
    if klass == "hard" and status[:1] == "4":
        return "soft", reason, status
    return klass, reason, status


def text_of(obj: dict, key: str) -> str:
    """A scalar field as one line of at most 500 characters; "" for anything else."""
    value = obj.get(key, "")
    return " ".join(str(value).split())[:500] if isinstance(value, str | int | float) else ""


def object_of(obj: object, key: str) -> dict:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, dict):
        raise MalformedPayload(f"'{key}' must be an object")
    return value


def list_of(obj: dict, key: str) -> list:
    value = obj.get(key)
    if not isinstance(value, list) or not value:
        raise MalformedPayload(f"'{key}' must be a non-empty list")
    return value


def report_of(kind: str, recipients: Iterable[Recipient], detail: str) -> Report:
    """A Report whose detail is one line of at most 300 characters (it is logged and shown)."""
    return Report(kind=kind, recipients=tuple(recipients), detail=" ".join(detail.split())[:300])
