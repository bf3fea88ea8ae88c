"""Bounces without RFC 3464 fields (pure): flufl.bounce and the failure text name the failed
addresses, the paragraph about each gives its reason; Amazon SES notifications sent by mail."""

from __future__ import annotations

import contextlib
from email.message import Message

from flufl.bounce import all_failures

from newsletter.audience.bounce_report import Recipient, Report, make_report, one_line
from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.bounce_text import (
    ADDRESS_RE,
    address_paragraph,
    codes,
    failed_addresses,
    failure_text,
    looks_like_bounce,
    returned_recipient,
)
from newsletter.audience.ses_notice import ses_fields

# flufl.bounce scans every line with dozens of patterns: ~3 s per MB. A larger message (a
# bounce returning a big attachment, or a hostile one) is read by our own rules alone.
_FLUFL_MAX_BYTES = 512 * 1024


def from_text(message: Message) -> Report:
    temporary: set[bytes] | frozenset[bytes] = set()
    permanent: set[bytes] | frozenset[bytes] = set()
    if _size(message) <= _FLUFL_MAX_BYTES:
        # flufl.bounce fails on some 8-bit input; our own rules read the text then
        with contextlib.suppress(Exception):
            temporary, permanent = all_failures(message)
    failed = {a.decode("ascii", "replace").lower(): "4" for a in temporary}
    failed.update({a.decode("ascii", "replace").lower(): "5" for a in permanent})
    text = failure_text(message)
    bounce = looks_like_bounce(message, text)
    named = failed_addresses(message, text) if bounce else []
    if bounce and not named and not failed and (original := returned_recipient(message)):
        named = [original]  # a bounce that names nobody is about its returned original
    if named and not set(named) & set(failed):
        failed = {a: "" for a in named}  # flufl.bounce guessed from the returned copy
    elif named:
        failed = {a: d for a, d in failed.items() if a in named}
    failed = {a: d for a, d in failed.items() if ADDRESS_RE.fullmatch(a)}
    if not failed:
        return Report("other", (), "not a bounce")
    recipients = []
    for address, default in sorted(failed.items()):
        paragraph = address_paragraph(text, address, set(failed))
        klass, reason, status = _text_class(paragraph or text, default)
        if paragraph and reason in ("undefined", "onhold") and len(failed) == 1:
            # the reason may be further up (a transcript before the address, a summary)
            klass, reason, status = _text_class(text, default)
        recipients.append(Recipient(address, klass, status, one_line(paragraph or text),
                                    reason))
    return make_report(recipients)


def bounce_for(message: Message, address: str) -> Report | None:
    """The report of a bounce that names no address, read as about `address` (a VERP
    recipient); None when the message does not look like a bounce at all."""
    text = failure_text(message)
    if not looks_like_bounce(message, text):
        return None
    klass, reason, status = _text_class(text, "")
    return make_report([Recipient(address, klass, status, one_line(text), reason)])


def _text_class(text: str, default: str) -> tuple[str, str, str]:
    status, code = codes(text)
    if not status and not code:
        code = {"4": 450, "5": 550}.get(default, 0)
    klass, reason = refusal_class(text, status=status, code=code)
    return klass, reason, status


def from_ses(notice: dict) -> Report:
    kind, rows = ses_fields(notice)
    if kind == "complaint":
        return Report("complaint", tuple(Recipient(a.lower(), "complaint", reason="feedback")
                                         for a, *_ in rows if "@" in a), "Amazon SES complaint")
    recipients = []
    for address, action, status, diagnostic in rows:
        text = diagnostic.partition(";")[2].strip() if ";" in diagnostic[:20] else diagnostic
        klass, reason = refusal_class(text, status=status, code=codes(text)[1], action=action)
        recipients.append(Recipient(address.lower(), klass, status, one_line(text), reason))
    return make_report(recipients)


def _size(message: Message) -> int:
    return sum(len(part.get_payload()) for part in message.walk()
               if not part.is_multipart() and isinstance(part.get_payload(), str))
