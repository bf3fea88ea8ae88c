"""Reading one bounce or complaint report (pure): RFC 3464 DSNs and other bounces via
flufl.bounce, RFC 5965 ARF complaints; no database, no side effects."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

# flufl.bounce logs each detector it runs at INFO (the CLI's level) and a traceback when one
# fails; a failure is reported here instead, as one warning naming the message.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL + 1)

_STATUS_RE = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")  # RFC 3463 enhanced status code
_REPLY_RE = re.compile(r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*")  # "550 5.1.1 ..." in text
_CODES_RE = re.compile(r"^[245]\d\d[ -]|(?<!\S)[245]\d\d-?\s*[245]\.\d{1,3}\.\d{1,3}\s*")
_TOKEN_RE = re.compile(r"/unsubscribe/([\w-]+\.[\w-]+)")


@dataclass(frozen=True)
class Report:
    """What one message means. kind: hard, soft, complaint, ignored or unparseable."""

    kind: str
    addresses: tuple[str, ...] = ()  # lower case
    detail: str = ""


def report_key(message: Message, raw: bytes) -> str:
    """The Message-ID, else a hash of the bytes: the same report always gets the same key."""
    mid = message.get("Message-ID")
    if isinstance(mid, str) and mid.strip():
        return "".join(mid.split())
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(message: Message, *, read_token: Callable[[str], str | None] | None = None
             ) -> Report:
    """What a bounce, complaint or other reply says. Never raises: see kind 'unparseable'.

    read_token maps an unsubscribe token to its address (or None when not genuine); it finds
    the complainant when a feedback loop redacts the recipient.
    """
    try:
        if message.get_param("report-type", "", "content-type").lower() == "feedback-report":
            return _complaint(message, read_token)
        return _bounce(message)
    except Exception as exc:  # flufl.bounce's heuristics meet hostile input; any error is data
        return Report("unparseable", (), f"{type(exc).__name__}: {exc}")


def _bounce(message: Message) -> Report:
    dsn = _dsn_fields(message)
    if dsn and not any(action.startswith(("fail", "delay", "error")) or status[:1] in ("4", "5")
                       for action, status, _ in dsn.values()):
        # A success DSN (Action: delivered, relayed): flufl.bounce would go on to guess.
        return Report("ignored", (), "delivery report without failures")
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - flufl.bounce fails on some 8-bit fields (see tests)
        if not dsn:
            raise
        # The DSN's own per-recipient fields still say who failed and how.
        temporary = {a.encode() for a, (_, status, _) in dsn.items() if status[:1] == "4"}
        permanent = {a.encode() for a, (_, status, _) in dsn.items() if status[:1] == "5"}
    found: dict[str, tuple[str, str]] = {}
    for raw, default in [(a, "soft") for a in temporary] + [(a, "hard") for a in permanent]:
        address = raw.decode("ascii", "replace").lower()
        _, status, diagnostic = dsn.get(address) or ("", *_text_reason(message))
        # RFC 3463: the status class decides, not the Action (a 4.x.x "failed" is an MTA
        # giving up on a temporary problem, such as Exchange's 4.4.7 QUEUE.Expired).
        kind = {"5": "hard", "4": "soft"}.get(status[:1], default)
        found[address] = (kind, _detail(status, diagnostic, kind))
    if not found:
        return Report("ignored", (), "not a bounce")
    kind = "hard" if any(k == "hard" for k, _ in found.values()) else "soft"
    chosen = sorted(a for a, (k, _) in found.items() if k == kind)
    return Report(kind, tuple(chosen), "; ".join(dict.fromkeys(found[a][1] for a in chosen)))


def _dsn_fields(message: Message) -> dict[str, tuple[str, str, str]]:
    """RFC 3464 per-recipient fields: address -> (action, status, diagnostic)."""
    fields = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload()[1:]:  # the first block is about the message
            status = _STATUS_RE.search(_field(block, "Status"))
            diagnostic = _field(block, "Diagnostic-Code")
            row = (_field(block, "Action").lower(), status.group(0) if status else "",
                   diagnostic.partition(";")[2].strip() or diagnostic)
            for name in ("Original-Recipient", "Final-Recipient"):
                address = _field(block, name).partition(";")[2].strip(" <>").lower()
                if address:
                    fields[address] = row
    return fields


def _text_reason(message: Message) -> tuple[str, str]:
    """(status, reply) from the first SMTP reply quoted in a non-standard bounce's text."""
    for part in message.walk():
        if part.get_content_maintype() == "message":
            break  # the returned original follows; its text says nothing about the failure
        if part.get_content_type() == "text/plain":
            text = (part.get_payload(decode=True) or b"").decode("ascii", "replace")
            if match := _REPLY_RE.search(text):
                return _STATUS_RE.search(match.group(0)).group(0), match.group(0).strip()
    return "", ""


def _detail(status: str, diagnostic: str, kind: str) -> str:
    """'5.1.1 <a@x>: Recipient address rejected: ...': reply codes folded into one status."""
    text = _CODES_RE.sub(" ", diagnostic).strip()
    text = text.removeprefix(status).strip() if status else text
    detail = " ".join(f"{status} {text}".split())
    return detail[:300] or ("permanent failure" if kind == "hard" else "temporary failure")


def _complaint(message: Message, read_token: Callable[[str], str | None] | None) -> Report:
    """RFC 5965 ARF: Original-Rcpt-To, else our unsubscribe token, else the original's To."""
    report = next((p.get_payload(0) for p in message.walk()
                   if p.get_content_type() == "message/feedback-report" and p.is_multipart()),
                  Message())
    feedback_type = _field(report, "Feedback-Type").lower()
    if feedback_type != "abuse":
        return Report("ignored", (), f"feedback-type {feedback_type or 'missing'}")
    original = _original_headers(message)
    token = _TOKEN_RE.search(_field(original, "List-Unsubscribe"))
    candidates = [
        _addresses(report.get_all("Original-Rcpt-To", [])),
        [read_token(token.group(1))] if token and read_token else [],
        _addresses(original.get_all("To", [])),
    ]
    found = next((c for c in candidates if any(c)), [])
    agent = (_field(report, "User-Agent") or _field(report, "Reporting-MTA")
             or _field(message, "From"))
    detail = f"abuse report from {agent}"
    if not found:
        return Report("ignored", (), f"{detail} names no recipient")
    return Report("complaint", tuple(sorted({a.lower() for a in found if a})), detail)


def _original_headers(message: Message) -> Message:
    """The complained-about message's headers: message/rfc822 or text/rfc822-headers."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            return part.get_payload(0)
        if part.get_content_type() == "text/rfc822-headers":
            return BytesHeaderParser().parsebytes(part.get_payload(decode=True) or b"")
    return Message()


def _addresses(values: list) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in values]) if "@" in addr]


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())  # unfolded; str() of an 8-bit Header


