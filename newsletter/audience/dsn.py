"""Reading one bounce or complaint report (pure): RFC 3464 DSNs, other bounces via flufl.bounce
and their text, RFC 5965 ARF complaints, RFC 3834 auto-replies; no database, no effects."""

from __future__ import annotations

import email
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import cast

from newsletter.audience.bounce_report import Recipient, Report, make_report, one_line
from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.bounce_text import (
    ADDRESS_RE,
    MAX_ADDRESSES,
    MAX_TEXT,
    address_paragraph,
    codes,
    failure_text,
    is_auto_reply,
    looks_like_bounce,
    own_parts,
    part_text,
)
from newsletter.audience.feedback import complaint, is_feedback
from newsletter.audience.ses_notice import ses_notification
from newsletter.audience.text_bounces import from_ses, from_text

__all__ = ["Recipient", "Report", "classify", "parse_report", "report_key"]

# flufl.bounce logs each detector it runs at INFO (the CLI's level) and a traceback when one
# fails; a failure is reported here instead, as one warning naming the message.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL + 1)

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, 6533
_FIELD_RE = re.compile(r"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*)$")


def parse_report(raw: bytes) -> Message:
    """The message, with CR-only and mixed line ends made LF first (RFC 5322 wants CRLF; old
    Mac mail programs and some gateways write CR alone, which hides every DSN field)."""
    return email.message_from_bytes(re.sub(rb"\r\n?", b"\n", raw))


def report_key(raw: bytes) -> str:
    """The same bytes are the same report; two reports may share a Message-ID."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(message: Message, *, read_token: Callable[[str], str | None] | None = None
             ) -> Report:
    """What a bounce, complaint or other reply says. Never raises: see kind 'unparseable'.

    read_token maps an unsubscribe token to its address (or None when not genuine); it finds
    the complainant when a feedback loop redacts the recipient.
    """
    try:
        if addressed := _addressed_unsubscribe(message, read_token):
            return addressed
        if is_feedback(message):
            return complaint(message, read_token)
        if blocks := dsn_blocks(message):
            return _from_dsn(message, blocks)
        if notice := ses_notification(message):
            return from_ses(notice)
        if is_auto_reply(message) and not looks_like_bounce(message, ""):
            return Report("auto-reply", (), "auto-reply (RFC 3834)")
        return from_text(message)
    except Exception as exc:  # noqa: BLE001 - hostile input; any error is data, never a crash
        return Report("unparseable", (), f"{type(exc).__name__}: {exc}")


def _addressed_unsubscribe(message: Message, read_token: Callable[[str], str | None] | None
                           ) -> Report | None:
    """A mail to our List-Unsubscribe mailto (RFC 2369) with the reader's signed token; a
    token that does not verify changes nothing. VERP reports are attributed by the caller."""
    try:
        from newsletter.audience.return_address import addressed_token
    except ImportError:
        return None
    found = addressed_token(message)
    if not found or found[0] != "unsubscribe":
        return None
    address = read_token(found[1]) if read_token else None
    if not address:
        return Report("other", (), "unsubscribe by mail: the token does not verify")
    return Report("unsubscribe", (Recipient(address.lower(), "none", reason="unsubscribe"),),
                  "unsubscribe by mail")


# --- RFC 3464 --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Block:
    address: str
    action: str
    status: str
    diagnostic: str


def dsn_blocks(message: Message) -> list[_Block]:
    """The per-recipient fields of a delivery-status part (or of a text part that holds them,
    as some gateways send); a block without an address or a reason to read it is skipped."""
    texts = [_dsn_text(p) for p in own_parts(message) if p.get_content_type() in _DSN_TYPES]
    if not texts and looks_like_bounce(message, ""):
        # A gateway that wraps the real report as its attachment (message/rfc822)
        texts = [_dsn_text(p) for p in message.walk() if p.get_content_type() in _DSN_TYPES]
    if not texts:
        text = failure_text(message)
        texts = [text] if "final-recipient:" in text.lower() else []
    blocks = [b for text in texts for b in _parse_blocks(text)]
    return list({b.address: b for b in blocks}.values())


def _dsn_text(part: Message) -> str:
    if part.is_multipart():  # the email package parsed the field blocks as messages
        text = "\n\n".join(_block_text(block) for block in
                           cast(list[Message], part.get_payload())[:MAX_ADDRESSES])
    else:
        text = part_text(part)
    return text[:MAX_TEXT]


def _block_text(block: Message) -> str:
    text = "\n".join(f"{k}: {v}" for k, v in block.items())
    if "\ufffd" not in text:
        return text
    # An 8-bit field value (the parsed header lost it): the block's own bytes, read as UTF-8
    # (RFC 6533 3.2, and what 8-bit fields in message/delivery-status are in practice)
    try:
        return block.as_bytes().decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a block that does not serialise keeps its fields
        return text


def _parse_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines() + [""]:
        if line[:1] in (" ", "\t") and line.strip() and last:  # folded (RFC 5322 2.2.3)
            fields[last] += " " + line.strip()
            continue
        match = _FIELD_RE.match(line)
        name = match.group(1).lower() if match else ""
        if not line.strip() or (name.endswith("-recipient") and name in fields):
            # a blank line ends a block; so does a second recipient (some gateways omit it)
            if block := _block(fields):
                blocks.append(block)
            fields, last = {}, ""
        if match:
            fields.setdefault(name, match.group(2).strip())
            last = name
    return blocks


def _block(fields: dict[str, str]) -> _Block | None:
    recipient = fields.get("final-recipient") or fields.get("original-recipient", "")
    address = ADDRESS_RE.search(recipient.partition(";")[2] or recipient)
    if not address:
        return None
    diagnostic = fields.get("diagnostic-code", "")
    diagnostic = diagnostic.partition(";")[2].strip() if ";" in diagnostic[:20] else diagnostic
    status = _status(fields.get("status", ""), diagnostic)
    return _Block(address.group(0).lower(), fields.get("action", "").lower().split(" ")[0],
                  status, " ".join(diagnostic.split()))


def _status(field: str, diagnostic: str) -> str:
    """The Status field, or the diagnostic's own code when the field is only X.0.0."""
    status, _ = codes(field)
    quoted, _ = codes(diagnostic)
    if quoted and (not status or status.endswith(".0.0")) and quoted[0] == (status or quoted)[0]:
        return quoted
    return status


def _from_dsn(message: Message, blocks: list[_Block]) -> Report:
    context = ""
    recipients = []
    for block in blocks:
        text = block.diagnostic
        if not text or _weak(text):
            context = context or failure_text(message)
            text = " ".join(filter(None, [text, address_paragraph(context, block.address)
                                          or (context if len(blocks) == 1 else "")]))
        code = codes(text)[1]
        klass, reason = refusal_class(text, status=block.status, code=code, action=block.action)
        recipients.append(Recipient(block.address, klass, block.status,
                                    one_line(block.diagnostic or text), reason))
    return make_report(recipients)


def _weak(diagnostic: str) -> bool:
    """A diagnostic that is only codes ("550 5.0.0", "smtp; 554"): the text must decide."""
    return len(re.sub(r"[\d.#()<>\[\]-]+", " ", diagnostic).split()) < 2
