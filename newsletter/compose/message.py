"""Assemble one subscriber's MIME message (multipart/alternative, UTF-8) from a frozen edition."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from newsletter.compose.base64_part import Base64Slot
from newsletter.compose.parts import Slot, body_pieces
from newsletter.compose.personalise import EDITION_NOTE, Recipient, slot_values, slots_in
from newsletter.compose.wire import Shared, wire
from newsletter.errors import InputError
from newsletter.headers import check_header_text  # the one gate for header text
from newsletter.model import Edition

CRLF = "\r\n"


@dataclass(frozen=True)
class Envelope:
    """What every message of a send shares, worked out once."""

    sender: str  # the From header value, already encoded
    sender_addr: str
    reply_to: str
    list_id: str  # "Name <list.id>"
    list_unsubscribe_mailto: str  # without a reader's token: for samples (build, preview)
    domain: str


@dataclass(frozen=True)
class Personal:
    email: str
    name: str
    unsubscribe_url: str
    message_id: str
    unsubscribe_mailto: str = ""  # the reader's own (return_address.ReturnPaths.mailto)
    edition_note: str = ""  # personalise.Recipient.edition_note


def make_envelope(name: str, sender_name: str, sender_addr: str, reply_to: str,
                  list_id: str, *, unsubscribe_address: str = "") -> Envelope:
    domain = sender_addr.rsplit("@", 1)[1]
    return Envelope(
        sender=encode_address(sender_name, sender_addr),
        sender_addr=sender_addr,
        reply_to=reply_to,
        list_id=f"{encode_phrase(name)} <{list_id}>",
        list_unsubscribe_mailto=(f"mailto:{unsubscribe_address or reply_to or sender_addr}"
                                 "?subject=unsubscribe"),
        domain=domain,
    )


def message_id(issue: str, email: str, domain: str) -> str:
    """Deterministic per issue and subscriber, so a resend is recognisable as the same message."""
    digest = hashlib.sha256(f"{issue}\0{email.lower()}".encode()).hexdigest()[:32]
    return f"<{issue}.{digest}@{domain}>"


_ATOMS_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")  # RFC 5322 atext and spaces


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_phrase(text: str) -> str:
    """A display phrase: as is when plain ASCII, else RFC 2047 encoded words, folded."""
    check_header_text(text, "header text")
    if text.isascii():
        return text if _ATOMS_RE.fullmatch(text) else quote_string(text)
    return Header(text, "utf-8", header_name="To").encode(linesep=CRLF)


def encode_address(name: str, addr: str) -> str:
    check_header_text(name, f"name of {addr}")
    check_header_text(addr, "address")
    if not name:
        return addr
    if name.isascii():
        plain = formataddr((name, addr))  # quotes and escapes specials such as , and "
        if len(plain) < 900:
            return plain
    # Encoded words, folded: also for a long ASCII name, which formataddr would not fold
    # (RFC 5322 2.1.1: no line over 998 octets).
    return f"{Header(name, 'utf-8', header_name='To').encode(linesep=CRLF)} <{addr}>"


def encode_subject(subject: str) -> str:
    check_header_text(subject, "subject")
    if subject.isascii() and len(subject) < 900:
        return subject
    return Header(subject, "utf-8", header_name="Subject").encode(linesep=CRLF)


@dataclass(frozen=True)
class Prepared:
    """An edition encoded once for a whole send: the shared headers and the body as Shared
    chunks (the same bytes objects in every message) and Slots, the few pieces per reader."""

    edition: Edition
    static_head: bytes  # headers shared by every message
    body: tuple[Shared | Slot | Base64Slot, ...]
    boundary: str
    text_encoding: str = "quoted-printable"
    html_encoding: str = "quoted-printable"
    # (a line whose only slot is the edition note, the note) -> its encoded line (_note_line)
    note_lines: dict[tuple[Slot, str], Shared] = field(default_factory=dict, compare=False,
                                                      repr=False)


def prepare(edition: Edition, env: Envelope, *, subject: str | None = None) -> Prepared:
    """Everything about the messages of one edition that does not depend on the recipient."""
    digest = hashlib.sha256(f"{edition.issue}\0{edition.language}\0{edition.html}".encode())
    boundary = f"=_nl_{edition.issue}_{digest.hexdigest()[:24]}"  # "=_" never occurs in QP
    shared = [
        ("Subject", encode_subject(subject if subject is not None else edition.subject)),
        ("Reply-To", env.reply_to) if env.reply_to else None,
        ("List-Id", env.list_id),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Content-Language", edition.language),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = CRLF.join(f"{k}: {v}" for k, v in (h for h in shared if h)).encode("ascii")
    body, text_encoding, html_encoding = body_pieces(edition.text, edition.html, boundary)
    return Prepared(edition, head, body, boundary, text_encoding, html_encoding)


def _breaks_a_link(text: str) -> bool:
    """A character that would end or break List-Unsubscribe's <...>: six substring scans
    (memchr) cost less than a regex's character class or a generator."""
    return ("\r" in text or "\n" in text or " " in text or "<" in text or ">" in text
            or "," in text)


_DATES: dict[tuple, str] = {}  # the Date header changes once a second, not per message


def _date(when: datetime) -> str:
    key = (when.year, when.month, when.day, when.hour, when.minute, when.second,
           when.utcoffset())
    text = _DATES.get(key)
    if text is None:
        if len(_DATES) > 64:
            _DATES.clear()
        text = _DATES[key] = format_datetime(when)
    return text


def assemble(prepared: Prepared, env: Envelope, who: Personal, when: datetime) -> bytes:
    """One recipient's message: personal headers, then the prepared body with the slots
    filled. A Wire: bytes that remember which parts are shared (see wire.py)."""
    return wire(*assemble_parts(prepared, env, who, when))


def assemble_parts(prepared: Prepared, env: Envelope, who: Personal,
                   when: datetime) -> tuple[bytes, list[bytes]]:
    """assemble()'s header block (with the blank line after it) and body parts, not joined:
    a sender that writes the parts as they are (SMTP without DKIM) saves making the whole
    message as one bytes object (a copy of it, and a Wire's another, zeroed first)."""
    mailto = who.unsubscribe_mailto or env.list_unsubscribe_mailto
    if _breaks_a_link(who.unsubscribe_url + mailto):
        raise InputError(f"unsubscribe URL for {who.email} is not header-safe")
    personal = CRLF.join([
        f"From: {env.sender}",
        f"To: {encode_address(who.name, who.email)}",
        f"Date: {_date(when)}",
        f"Message-ID: {who.message_id}",
        # RFC 8058: one-click needs the https URL and the List-Unsubscribe-Post header;
        # the URL is written whole, never folded or encoded, so clients can use it as is.
        f"List-Unsubscribe: <{who.unsubscribe_url}>, <{mailto}>",
    ]).encode("ascii")
    recipient = Recipient(who.name, who.unsubscribe_url, who.edition_note)
    fallback = prepared.edition.fallback_name
    values = slot_values(recipient, fallback)  # indexed by Slot.html: text, then HTML
    parts: list[bytes] = []
    for piece in prepared.body:
        if isinstance(piece, Shared):
            parts.append(piece)
        elif type(piece) is Slot and _note_only(piece.template):
            _note_line(prepared, piece, values[piece.html], parts)
        else:
            piece.fill_into(values[piece.html], parts)
    return personal + b"\r\n" + prepared.static_head + b"\r\n\r\n", parts


def _note_only(template: str) -> bool:
    """Whether the edition note is the line's only slot (worked out once per line)."""
    known = _NOTE_ONLY.get(template)
    if known is None:
        known = set(slots_in(template)) == {EDITION_NOTE}
        if len(_NOTE_ONLY) < 4096:
            _NOTE_ONLY[template] = known
    return known


_NOTE_ONLY: dict[str, bool] = {}


def _note_line(prepared: Prepared, piece: Slot, values: dict[str, str],
               parts: list[bytes]) -> None:
    """A line whose only slot is the edition note: the same for every reader of the edition
    but those who get it in another language than theirs, so it is encoded once per note."""
    key = (piece, values[EDITION_NOTE])
    line = prepared.note_lines.get(key)
    if line is not None:
        parts.append(line)
        return
    piece.fill_into(values, parts)  # one line: its quoted-printable encoding and CRLF
    if len(prepared.note_lines) < _NOTES_KEPT:  # shared: later stages' work on it is kept too
        parts[-1] = prepared.note_lines[key] = Shared(parts[-1])


_NOTES_KEPT = 256  # (line, note) pairs an edition keeps: its languages times its note lines


def build_message(edition: Edition, env: Envelope, who: Personal, when: datetime, *,
                  subject: str | None = None) -> bytes:
    """The whole message as bytes ready for SMTP DATA (CRLF line ends). For many recipients,
    prepare() once and assemble() per recipient instead."""
    return assemble(prepare(edition, env, subject=subject), env, who, when)
