"""Assemble one subscriber's MIME message (multipart/alternative, UTF-8) from a frozen edition."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from newsletter.compose.personalise import (
    PLACEHOLDER_RE,
    Recipient,
    personalise_html,
    personalise_text,
)
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


def _qp_line(line: str) -> bytes:
    """One line, quoted-printable, CRLF soft breaks: no output line over 76 octets."""
    encoded = binascii.b2a_qp(line.encode("utf-8"), istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Prepared:
    """An edition encoded once for a whole send. Lines without placeholders are encoded here;
    per recipient, only the few lines with a placeholder are filled in and encoded."""

    edition: Edition
    static_head: bytes  # headers shared by every message
    text: tuple[bytes | str, ...]  # bytes: encoded line; str: a line with placeholders
    html: tuple[bytes | str, ...]  # (or, for a base64 part, the one whole unencoded text)
    boundary: str
    text_encoding: str = "quoted-printable"
    html_encoding: str = "quoted-printable"


def _encode_lines(text: str) -> tuple[bytes | str, ...]:
    """Runs of lines without placeholders become one encoded chunk; the rest stay text."""
    chunks: list[bytes | str] = []
    run: list[bytes] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if PLACEHOLDER_RE.search(line):
            if run:
                chunks.append(b"\r\n".join(run))
                run = []
            chunks.append(line)
        else:
            run.append(_qp_line(line))
    if run:
        chunks.append(b"\r\n".join(run))
    return tuple(chunks)


def _encode_part(text: str) -> tuple[str, tuple[bytes | str, ...]]:
    """The smaller transfer encoding for one part. Quoted-printable costs 3 octets for each
    octet outside ASCII, so Arabic, Russian or Chinese text (2-3 octets a character) is up to
    60 % smaller in base64; Latin text is smaller in QP. Placeholder lines are counted at
    their unfilled size, which is close to the filled one."""
    lines = _encode_lines(text)
    qp_size = sum(len(c) + 2 if isinstance(c, bytes) else len(_qp_line(c)) + 2 for c in lines)
    canonical = text.replace("\r\n", "\n").replace("\n", "\r\n")  # RFC 2045 6.8: CRLF first
    octets = len(canonical.encode("utf-8"))
    b64_size = -(-octets // 3) * 4 * 78 // 76  # 76 characters and a CRLF a line
    if b64_size < qp_size:
        return "base64", (canonical,)
    return "quoted-printable", lines


def html_wire_size(html: str) -> int:
    """Octets the HTML part takes in the message, in the encoding prepare() picks for it."""
    encoding, lines = _encode_part(html)
    if encoding == "base64":
        return len(_base64_part(str(lines[0])))
    return sum(len(c) + 2 if isinstance(c, bytes) else len(_qp_line(c)) + 2 for c in lines)


def _base64_part(text: str) -> bytes:
    encoded = base64.b64encode(text.encode("utf-8"))
    return b"\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


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
    text_encoding, text = _encode_part(edition.text)
    html_encoding, html = _encode_part(edition.html)
    return Prepared(edition, head, text, html, boundary, text_encoding, html_encoding)


def _fill(lines: tuple[bytes | str, ...], personalise, recipient: Recipient,  # noqa: ANN001
          fallback: str, encoding: str = "quoted-printable") -> bytes:
    if encoding == "base64":  # the whole part per recipient: base64 cannot be patched
        return _base64_part(personalise(lines[0], recipient, fallback))
    return b"\r\n".join(line if isinstance(line, bytes)
                         else _qp_line(personalise(line, recipient, fallback)) for line in lines)


def assemble(prepared: Prepared, env: Envelope, who: Personal, when: datetime) -> bytes:
    """One recipient's message: personal headers, then the prepared parts with values filled."""
    mailto = who.unsubscribe_mailto or env.list_unsubscribe_mailto
    if any(c in who.unsubscribe_url + mailto for c in "\r\n <>,"):
        raise InputError(f"unsubscribe URL for {who.email} is not header-safe")
    edition, boundary = prepared.edition, prepared.boundary.encode("ascii")
    recipient = Recipient(who.name, who.unsubscribe_url, who.edition_note)
    personal = CRLF.join([
        f"From: {env.sender}",
        f"To: {encode_address(who.name, who.email)}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: {who.message_id}",
        # RFC 8058: one-click needs the https URL and the List-Unsubscribe-Post header;
        # the URL is written whole, never folded or encoded, so clients can use it as is.
        f"List-Unsubscribe: <{who.unsubscribe_url}>, <{mailto}>",
    ]).encode("ascii")
    return b"\r\n".join([
        personal, prepared.static_head, b"",
        b"This is a multi-part message in MIME format.",
        b"--" + boundary,
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: " + prepared.text_encoding.encode("ascii"),
        b"",
        _fill(prepared.text, personalise_text, recipient, edition.fallback_name,
              prepared.text_encoding),
        b"--" + boundary,
        b"Content-Type: text/html; charset=utf-8",
        b"Content-Transfer-Encoding: " + prepared.html_encoding.encode("ascii"),
        b"",
        _fill(prepared.html, personalise_html, recipient, edition.fallback_name,
              prepared.html_encoding),
        b"--" + boundary + b"--",
        b"",
    ])


def build_message(edition: Edition, env: Envelope, who: Personal, when: datetime, *,
                  subject: str | None = None) -> bytes:
    """The whole message as bytes ready for SMTP DATA (CRLF line ends). For many recipients,
    prepare() once and assemble() per recipient instead."""
    return assemble(prepare(edition, env, subject=subject), env, who, when)
