"""Complaints (pure): RFC 5965 ARF feedback reports, Microsoft's JMRP/SNDS forwards and Apple
Mail's one-click opt-out, each read down to the reader who complained."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import cast

from newsletter.audience.bounce_report import Recipient, Report, one_line

_TOKEN_RE = re.compile(r"/unsubscribe/([\w-]+\.[\w-]+)")
# RFC 5965 3.5 / RFC 6650 feedback types that are a reader's complaint; "not-spam" is the
# opposite, and "auth-failure" (RFC 6591, DMARC forensics) is about our signing, not a reader.
_COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other", "opt-out", "complaint")
_MICROSOFT_RE = re.compile(r"@(?:hotmail|outlook|live|msn)\.", re.IGNORECASE)


def is_feedback(message: Message) -> bool:
    report_type = message.get_param("report-type", "", "content-type")
    # an RFC 2231 parameter (report-type*=...) comes back as a tuple: not ours to read
    if isinstance(report_type, str) and report_type.lower() == "feedback-report":
        return True
    if any(p.get_content_type() == "message/feedback-report" for p in message.walk()):
        return True
    return _is_jmrp(message) or _is_apple_opt_out(message)


def complaint(message: Message, read_token: Callable[[str], str | None] | None) -> Report:
    """The Report of a complaint: who complained, and through which feedback loop."""
    report = _feedback_fields(message)
    feedback_type = _field(report, "Feedback-Type").lower() or (
        "opt-out" if _is_apple_opt_out(message) else "abuse")
    agent = (_field(report, "User-Agent") or _field(report, "Reporting-MTA")
             or _field(message, "From"))
    found = _complainants(message, report, read_token)
    if feedback_type not in _COMPLAINT_TYPES:
        recipients = tuple(Recipient(a, "none", reason="feedback") for a in found)
        return Report("other", recipients, one_line(f"feedback-type {feedback_type}"))
    detail = one_line(f"{'opt-out' if feedback_type == 'opt-out' else 'abuse report'} from "
                      f"{agent}")
    if not found:
        return Report("complaint", (), f"{detail} names no recipient")
    return Report("complaint", tuple(Recipient(a, "complaint", diagnostic=detail,
                                               reason="feedback") for a in found), detail)


def _complainants(message: Message, report: Message,
                  read_token: Callable[[str], str | None] | None) -> list[str]:
    """Original-Rcpt-To, else our signed unsubscribe token, else the provider's own header,
    else the original's To (a redacted To is the last resort)."""
    original = _original_headers(message)
    token = _TOKEN_RE.search(_field(original, "List-Unsubscribe"))
    candidates: list[list[str] | list[str | None]] = [
        _addresses(report.get_all("Original-Rcpt-To", []) + report.get_all("Removal-Recipient",
                                                                            [])),
        [read_token(token.group(1))] if token and read_token else [],
        _addresses(original.get_all("X-HmXmrOriginalRecipient", [])),
        _addresses(message.get_all("From", [])) if _is_apple_opt_out(message) else [],
        _addresses(original.get_all("To", [])),
    ]
    found = next((c for c in candidates if any(c)), [])
    return sorted({a.lower() for a in found if a})


def _feedback_fields(message: Message) -> Message:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            if part.is_multipart():
                return cast(Message, part.get_payload(0))
            return BytesHeaderParser().parsebytes(
                cast(bytes, part.get_payload(decode=True)) or b"")
    return Message()


def _is_jmrp(message: Message) -> bool:
    """Microsoft's junk-mail reports: the original attached, its recipient in a header."""
    if not _MICROSOFT_RE.search(_field(message, "From")):
        return False
    return bool(_field(_original_headers(message), "X-HmXmrOriginalRecipient"))


def _is_apple_opt_out(message: Message) -> bool:
    return _field(message, "X-Apple-Unsubscribe").lower() == "true"


def _original_headers(message: Message) -> Message:
    """The complained-about message's headers: message/rfc822 or text/rfc822-headers."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            return cast(Message, part.get_payload(0))
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers"):
            return BytesHeaderParser().parsebytes(
                cast(bytes, part.get_payload(decode=True)) or b"")
    return Message()


def _addresses(values: list) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in values]) if "@" in addr]


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())  # unfolded; str() of an 8-bit Header
