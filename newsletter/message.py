"""Assemble one subscriber's MIME message (multipart/alternative, UTF-8) from a frozen edition."""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from newsletter.errors import InputError
from newsletter.personalise import Recipient, personalise_html, personalise_text
from newsletter.render import Edition

CRLF = "\r\n"
# "=?charset?q?...?=": an input carrying an encoded word could smuggle CR/LF past our checks
# once a client decodes it (RFC 2047 section 5 forbids encoded words in addr-specs anyway).
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True)
class Envelope:
    """What every message of a send shares, worked out once."""

    sender: str  # the From header value, already encoded
    sender_addr: str
    reply_to: str
    list_id: str  # "Name <list.id>"
    list_unsubscribe_mailto: str
    domain: str


@dataclass(frozen=True)
class Personal:
    email: str
    name: str
    unsubscribe_url: str
    message_id: str


def make_envelope(name: str, sender_name: str, sender_addr: str, reply_to: str,
                  list_id: str) -> Envelope:
    domain = sender_addr.rsplit("@", 1)[1]
    return Envelope(
        sender=encode_address(sender_name, sender_addr),
        sender_addr=sender_addr,
        reply_to=reply_to,
        list_id=f"{encode_phrase(name)} <{list_id}>",
        list_unsubscribe_mailto=f"mailto:{reply_to or sender_addr}?subject=unsubscribe",
        domain=domain,
    )


def message_id(issue: str, email: str, domain: str) -> str:
    """Deterministic per issue and subscriber, so a resend is recognisable as the same message."""
    digest = hashlib.sha256(f"{issue}\0{email.lower()}".encode()).hexdigest()[:32]
    return f"<{issue}.{digest}@{domain}>"


def check_header_text(value: str, what: str) -> str:
    """Refuse CR, LF, NUL and encoded-word tricks in anything bound for a header."""
    # NEL, LS and PS too: str.splitlines() breaks on them, and so does email.header, which
    # would silently turn them into folds.
    if any(c in value for c in "\r\n\x00\x85\u2028\u2029"):
        raise InputError(f"{what} contains a line break or NUL: {value[:60]!r}")
    # Other C0 controls and DEL: no header syntax allows them, encoded or not (the parser
    # flags a NonPrintableDefect); TAB is whitespace and stays.
    if any((ord(c) < 32 and c != "\t") or c == "\x7f" for c in value):
        raise InputError(f"{what} contains a control character: {value[:60]!r}")
    if _ENCODED_WORD_RE.search(value):
        raise InputError(f"{what} contains an RFC 2047 encoded word: {value[:60]!r}")
    return value


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


def _qp(text: str) -> str:
    """Quoted-printable with CRLF line ends: no line over 76 octets whatever the input."""
    data = text.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, istext=True, header=False).decode("ascii")
    return encoded.replace("\n", CRLF)


def build_message(edition: Edition, env: Envelope, who: Personal, when: datetime, *,
                  subject: str | None = None) -> bytes:
    """The whole message as bytes ready for SMTP DATA (CRLF line ends)."""
    recipient = Recipient(who.name, who.unsubscribe_url)
    html = personalise_html(edition.html, recipient, edition.fallback_name)
    text = personalise_text(edition.text, recipient, edition.fallback_name)
    if any(c in who.unsubscribe_url for c in "\r\n <>,"):
        raise InputError(f"unsubscribe URL for {who.email} is not header-safe")
    boundary = "=_nl_" + who.message_id.strip("<>").split("@")[0].replace(".", "_")[-40:]
    headers = [
        ("From", env.sender),
        ("To", encode_address(who.name, who.email)),
        ("Subject", encode_subject(subject if subject is not None else edition.subject)),
        ("Date", format_datetime(when)),
        ("Message-ID", who.message_id),
        ("Reply-To", env.reply_to) if env.reply_to else None,
        ("List-Id", env.list_id),
        # RFC 8058: one-click needs the https URL and the List-Unsubscribe-Post header;
        # the URL is written whole, never folded or encoded, so clients can use it as is.
        ("List-Unsubscribe", f"<{who.unsubscribe_url}>, <{env.list_unsubscribe_mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Content-Language", edition.language),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = CRLF.join(f"{k}: {v}" for k, v in (h for h in headers if h))
    body = CRLF.join([
        "This is a multi-part message in MIME format.",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),
        f"--{boundary}",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(html),
        f"--{boundary}--",
        "",
    ])
    return (head + CRLF + CRLF + body).encode("ascii")
