"""The body of an edition's messages (multipart/alternative), encoded once for a whole send:
every run of lines without a placeholder becomes one Shared chunk, used as is for every reader;
only the slots (a quoted-printable line with a placeholder; in a base64 part, the values and
the octets around them, see base64_part.py) are filled and encoded per reader."""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from newsletter.compose.base64_part import Base64Slot, base64_lines
from newsletter.compose.personalise import PLACEHOLDER_RE, fill
from newsletter.compose.wire import Shared

CRLF = b"\r\n"


def qp_line(line: str) -> bytes:
    """One line, quoted-printable, CRLF soft breaks: no output line over 76 octets."""
    encoded = binascii.b2a_qp(line.encode("utf-8"), istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


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
    """What is filled per reader in a quoted-printable part: one line with placeholders."""

    template: str
    html: bool

    def fill_into(self, values: dict[str, str], out: list[bytes]) -> None:
        out.append(qp_line(fill(self.template, values)) + CRLF)


Piece = bytes | Slot | Base64Slot


def _qp_pieces(text: str, html: bool) -> list[Piece]:
    return [c + CRLF if isinstance(c, bytes) else Slot(c, html) for c in encode_lines(text)]


def _base64_pieces(text: str, html: bool) -> list[Piece]:
    canonical = _crlf(text)
    if PLACEHOLDER_RE.search(canonical) is None:
        return [base64_lines(canonical.encode("utf-8")) + CRLF]
    return [Base64Slot.of(canonical, html)]


def body_pieces(text: str, html: str,
                boundary: str) -> tuple[tuple[Shared | Slot | Base64Slot, ...], str, str]:
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


def _merged(pieces: list[Piece]) -> tuple[Shared | Slot | Base64Slot, ...]:
    """Adjacent encoded pieces joined into one Shared chunk: fewer parts per message."""
    out: list[Shared | Slot | Base64Slot] = []
    run: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, Slot | Base64Slot):
            if run:
                out.append(Shared(b"".join(run)))
                run = []
            out.append(piece)
        else:
            run.append(piece)
    if run:
        out.append(Shared(b"".join(run)))
    return tuple(out)
