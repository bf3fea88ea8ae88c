"""The body of an edition's messages (multipart/alternative), encoded once for a whole send:
every run of lines without a placeholder becomes one Shared chunk, used as is for every reader;
only the slots (a quoted-printable line with a placeholder, or the rest of a base64 part from
its first placeholder on) are filled and encoded per reader."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from newsletter.compose.personalise import PLACEHOLDER_RE, fill
from newsletter.compose.wire import Shared

CRLF = b"\r\n"
B64_LINE = 57  # input octets per 76-character base64 line


def qp_line(line: str) -> bytes:
    """One line, quoted-printable, CRLF soft breaks: no output line over 76 octets."""
    encoded = binascii.b2a_qp(line.encode("utf-8"), istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


def base64_lines(octets: bytes) -> bytes:
    """Base64 in lines of 76 characters, CRLF between them (none after the last)."""
    encoded = base64.b64encode(octets)
    return CRLF.join([encoded[i:i + 76] for i in range(0, len(encoded), 76)])


def encode_lines(text: str) -> tuple[bytes | str, ...]:
    """Runs of lines without placeholders become one encoded chunk; the rest stay text."""
    chunks: list[bytes | str] = []
    run: list[bytes] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if PLACEHOLDER_RE.search(line):
            if run:
                chunks.append(CRLF.join(run))
                run = []
            chunks.append(line)
        else:
            run.append(qp_line(line))
    if run:
        chunks.append(CRLF.join(run))
    return tuple(chunks)


def _qp_size(lines: tuple[bytes | str, ...]) -> int:
    return sum(len(c) + 2 if isinstance(c, bytes) else len(qp_line(c)) + 2 for c in lines)


def choose_encoding(text: str) -> str:
    """The smaller transfer encoding for one part. Quoted-printable costs 3 octets for each
    octet outside ASCII, so Arabic, Russian or Chinese text (2-3 octets a character) is up to
    60 % smaller in base64; Latin text is smaller in QP. Placeholder lines are counted at
    their unfilled size, which is close to the filled one."""
    qp_size = _qp_size(encode_lines(text))
    octets = len(_crlf(text).encode("utf-8"))
    b64_size = -(-octets // 3) * 4 * 78 // 76  # 76 characters and a CRLF a line
    return "base64" if b64_size < qp_size else "quoted-printable"


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")  # RFC 2045 6.8: CRLF first


def html_wire_size(html: str) -> int:
    """Octets the HTML part takes in the message, in the encoding prepare() picks for it."""
    if choose_encoding(html) == "base64":
        return len(base64_lines(_crlf(html).encode("utf-8")))
    return _qp_size(encode_lines(html))


@dataclass(frozen=True)
class Slot:
    """What is filled per reader: one quoted-printable line with placeholders, or the rest of
    a base64 part (lead: the octets before it that did not fill a whole shared line;
    after_shared: shared base64 lines come before it)."""

    template: str
    html: bool
    base64: bool = False
    lead: bytes = b""
    after_shared: bool = False

    def fill(self, values: dict[str, str]) -> bytes:
        if not self.base64:
            return qp_line(fill(self.template, values)) + CRLF
        encoded = base64_lines(self.lead + fill(self.template, values).encode("utf-8"))
        # Nothing left after the shared lines (the values were empty): no empty line either,
        # as one base64 run of the whole part would have none.
        return encoded + CRLF if encoded or not self.after_shared else b""


Piece = bytes | Slot


def _qp_pieces(text: str, html: bool) -> list[Piece]:
    return [c + CRLF if isinstance(c, bytes) else Slot(c, html) for c in encode_lines(text)]


def _base64_pieces(text: str, html: bool) -> list[Piece]:
    """Base64 of a concatenation is the concatenation of the base64 when the first piece is
    whole lines (a multiple of 57 octets): the lines before the first placeholder are shared."""
    canonical = _crlf(text)
    first = PLACEHOLDER_RE.search(canonical)
    if first is None:
        return [base64_lines(canonical.encode("utf-8")) + CRLF]
    before = canonical[:first.start()].encode("utf-8")
    whole = len(before) // B64_LINE * B64_LINE
    slot = Slot(canonical[first.start():], html, True, before[whole:], whole > 0)
    return [base64_lines(before[:whole]) + CRLF, slot] if whole else [slot]


def body_pieces(text: str, html: str, boundary: str) -> tuple[tuple[Shared | Slot, ...], str, str]:
    """(the body as Shared chunks and Slots, the text part's encoding, the HTML part's)."""
    mark = b"--" + boundary.encode("ascii")
    pieces: list[Piece] = [b"This is a multi-part message in MIME format.\r\n"]
    encodings = []
    for subtype, content in (("plain", text), ("html", html)):
        encoding = choose_encoding(content)
        encodings.append(encoding)
        pieces.append(mark + b"\r\nContent-Type: text/" + subtype.encode("ascii")
                      + b"; charset=utf-8\r\nContent-Transfer-Encoding: "
                      + encoding.encode("ascii") + b"\r\n\r\n")
        make = _base64_pieces if encoding == "base64" else _qp_pieces
        pieces += make(content, subtype == "html")
    pieces.append(mark + b"--\r\n")
    return _merged(pieces), encodings[0], encodings[1]


def _merged(pieces: list[Piece]) -> tuple[Shared | Slot, ...]:
    """Adjacent encoded pieces joined into one Shared chunk: fewer parts per message."""
    out: list[Shared | Slot] = []
    run: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, Slot):
            if run:
                out.append(Shared(b"".join(run)))
                run = []
            out.append(piece)
        else:
            run.append(piece)
    if run:
        out.append(Shared(b"".join(run)))
    return tuple(out)
