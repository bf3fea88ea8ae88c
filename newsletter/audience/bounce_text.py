"""The human-readable side of a bounce (pure): its failure text, per-address paragraphs,
reply and enhanced codes, and whether a message is an auto-reply (RFC 3834)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from email.message import Message
from typing import cast

# The human-readable part of a report is a few KB; past this it is hostile or a quoted copy.
MAX_TEXT = 64 * 1024
MAX_ADDRESSES = 200
STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")  # RFC 3463 enhanced status code
_REPLY_RE = re.compile(r"(?<![\d.])([45]\d\d)(?:[ -]|$)(?![\d.]*%)")  # RFC 5321 reply code
# Where a bounce starts quoting the returned message: its text says nothing about the failure.
_ORIGINAL_RE = re.compile(
    r"^\s*(?:-+ ?(?:below this line is a copy of the message|this is a copy of the message|"
    r"(?:the )?original message|(?:un)?sent message|returned message|begin (?:of )?(?:original|"
    r"returned) message|message headers|(?:the )?header of the original message)|below this "
    r"line is a copy of the message|original message (?:follows|headers? follows?)|(?:un)?sent "
    r"message follows|message headers follow|a copy of the original message (?:follows|is "
    r"attached)|the header of the original message|content-type: (?:message/rfc822|"
    r"text/rfc822-headers)|original message:?\s*$|(?:received|return-path|dkim-signature):)",
    re.IGNORECASE | re.MULTILINE)
_AUTO_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|antwort|respuesta)|auto:|out of (?:the )?office|"
    r"away from|away until|on vacation|vacation|abwesen|r[ée]ponse automatique|"
    r"absence|risposta automatica|automatisch antwoord|fuera de la oficina)", re.IGNORECASE)


def part_text(part: Message) -> str:
    """The decoded text of one non-multipart part; never raises on a bad charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", "replace")
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # an unknown charset name (unicode-1-1-utf-7, x-unknown, ...)
        return payload.decode("utf-8", "replace")


def own_parts(message: Message) -> Iterator[Message]:
    """The report's parts, not those of a returned original (which may be a report itself)."""
    yield message
    if message.get_content_type() in ("message/rfc822", "message/global"):
        return
    if message.is_multipart():
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from own_parts(part)


def failure_text(message: Message) -> str:
    """The text a bounce gives about the failure: its text parts before the returned copy."""
    return _split_text(message)[0]


def returned_recipient(message: Message) -> str:
    """The one To address of the returned original (attached, or quoted after the text)."""
    for part in own_parts(message):
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            values = cast(Message, part.get_payload(0)).get_all("To", [])
            break
        if kind in ("text/rfc822-headers", "message/rfc822-headers"):
            values = re.findall(r"(?im)^to:(.*)$", part_text(part))
            break
    else:
        values = re.findall(r"(?im)^to:(.*)$", _split_text(message)[1])
    found = {a.lower() for a in _EMAIL_RE.findall(" ".join(str(v) for v in values))}
    return found.pop() if len(found) == 1 else ""


def _split_text(message: Message) -> tuple[str, str]:
    texts: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            break  # the returned original follows
        defective = part.get_content_maintype() == "multipart" and not part.is_multipart()
        if part.get_content_maintype() == "text" and kind != "text/html" or defective or (
                kind == "text/html" and not texts):  # defective: its boundary is not found
            text = part_text(part)
            if kind == "text/html":
                text = re.sub(r"<[^>]*>", " ", text)
            texts.append(text)
    text = "\n".join(texts)[:MAX_TEXT]
    if match := _ORIGINAL_RE.search(text):
        return text[:match.start()], text[match.start():]
    return text, ""


def address_paragraph(text: str, address: str, others: AbstractSet[str] = frozenset()) -> str:
    """The lines about one failed address: its line and what follows up to a blank line.

    qmail ("<a@b>:" then the reply), Exim ("  a@b" then indented lines), Sendmail ("... a@b")
    and most others put the reason right after the address.
    """
    lines = text.splitlines()
    low = address.lower()
    for i, line in enumerate(lines):
        if low in line.lower():
            block = [line]
            # "550 <a@b>... User unknown" says it all on its line (Sendmail): only lines
            # indented under it continue it; "<a@b>:" or "  a@b" alone has its reason below.
            said = (len(line.lower().replace(low, " ").split()) >= 3
                    and not line.lstrip().startswith(">>>"))  # a transcript's command line
            indent = len(line) - len(line.lstrip())
            for follow in lines[i + 1:]:
                if not follow.strip() and len(block) > 1:
                    break
                if low not in follow.lower() and any(o in follow.lower() for o in others):
                    break  # the next failed address's paragraph
                if said and follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                    break
                block.append(follow)
            paragraph = "\n".join(block)
            if len(paragraph.replace(address, "").split()) >= 3:
                return paragraph
    return ""


def codes(text: str) -> tuple[str, int]:
    """(enhanced status, reply code) quoted in a diagnostic: the most specific status."""
    found = [m.group(0) for m in STATUS_RE.finditer(text)
             if m.group(1) in "45" or m.group(0).startswith("2.")]
    status = next((s for s in found if not s.endswith(".0.0")), found[0] if found else "")
    reply = _REPLY_RE.search(text)
    code = int(reply.group(1)) if reply else 0
    if status and code and str(code)[0] != status[0]:
        code = 0  # "550 ... (#4.4.1)": the two disagree; the enhanced code is more precise
    return status, code


def is_auto_reply(message: Message) -> bool:
    """RFC 3834 Auto-Submitted: auto-replied, the common X- headers, or a vacation subject."""
    auto = str(message.get("Auto-Submitted", "")).lower()
    if auto.startswith("auto-replied"):
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Vacation")):
        return True
    if str(message.get("Precedence", "")).lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(str(message.get("Subject", "")).strip()))


_DAEMON_RE = re.compile(r"mailer-daemon|postmaster|mail ?delivery|mdaemon|bounce|"
                        r"mail administrator|system administrator|nobody@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|report|problem)|"
    r"returned mail|failure notice|mail delivery|could not be delivered|not delivered|"
    r"delivery has failed|rejected|non remis|unzustellbar|nondeliverable|mail system error|"
    r"permanent error|returned to sender|message status|warning: could not send|"
    r"nicht zugestellt|error sending|delivery error|failed delivery|bounce", re.IGNORECASE)
_BOUNCE_TEXT = re.compile(
    r"(?:could not|couldn't|cannot|can't|was not|wasn't) be(?:en)? delivered|undeliverable|"
    r"delivery (?:has |to the following recipients? )?failed|permanent (?:fatal )?errors?|"
    r"following address(?:\(?es\)?)? failed|unable to deliver|delivery status notification|"
    r"mail delivery (?:failed|subsystem|system)|returned mail|not be delivered",
    re.IGNORECASE)
_HEADER_LINE = re.compile(r"^\s*(?:from|return-path|sender|reply-to|message-id|in-reply-to|"
                          r"references|errors-to|x-[\w-]+)\s*:", re.IGNORECASE)
_SENDER_CONTEXT = re.compile(r"(?:mail from|envelope-from|sender|from):?\s*<?$|contact\b.{0,40}$",
                             re.IGNORECASE)
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# An address as a report names it; a quoted local part ("a..b"@example.org) is kept whole.
ADDRESS_RE = re.compile(r"(?:\"[^\"\s\x00-\x1f\x7f]+\"|[\w.!#$%&'*+/=?^`{|}~-]+)"
                        r"@[\w-]+(?:\.[\w-]+)+")


def looks_like_bounce(message: Message, text: str) -> bool:
    """From a mailer daemon or postmaster, a subject that says delivery failed, or a failure
    text that says so in the words delivery agents use."""
    sender = f"{message.get('From', '')} {message.get('Return-Path', '')}"
    return bool(_DAEMON_RE.search(sender) or message.get("Return-Path", "x").strip() == "<>"
                or _BOUNCE_SUBJECT.search(str(message.get("Subject", "")))
                or _BOUNCE_TEXT.search(text[:3000]))


def failed_addresses(message: Message, text: str) -> list[str]:
    """Addresses a non-standard bounce names in its failure text, in order: not the report's
    own From/To, not a daemon's, not the envelope sender ("MAIL From:<...>")."""
    text = "\n".join(line for line in text.splitlines() if not _HEADER_LINE.match(line))
    own = {a.lower() for a in _EMAIL_RE.findall(f"{message.get('From', '')} "
                                                 f"{message.get('To', '')}")}
    found: dict[str, None] = {}
    excluded: set[str] = set()
    for match in _EMAIL_RE.finditer(text):
        address = match.group(0).lower().rstrip(".")
        before = text[max(0, match.start() - 50):match.start()]
        if (address in own or _DAEMON_RE.search(address.partition("@")[0])
                or _SENDER_CONTEXT.search(before.rstrip(" <"))):
            excluded.add(address)
        elif len(found) < MAX_ADDRESSES:
            found[address] = None
    return [a for a in found if a not in excluded]
