"""A base64 part with per-reader values, encoded mostly once per edition.

Base64 turns each 57 octets into one 76-character line, so the encoding of a stretch of text
depends only on where in a line it starts. A reader's values shift that start; the text
between two slots is therefore encoded once for each start it is met at (at most 57), and
kept: per reader only the values and the few octets around them are encoded."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from newsletter.compose.personalise import split_slots
from newsletter.compose.wire import Shared

CRLF = b"\r\n"
B64_LINE = 57  # input octets per 76-character base64 line


def base64_lines(octets: bytes) -> bytes:
    """Base64 in lines of 76 characters, CRLF between them (none after the last)."""
    encoded = base64.b64encode(octets)
    return CRLF.join([encoded[i:i + 76] for i in range(0, len(encoded), 76)])


@dataclass(frozen=True)
class Base64Slot:
    """The whole part: the text between slots as UTF-8 octets, the slots as their markers."""

    pieces: tuple[bytes | str, ...]
    html: bool
    # (piece index, octets into the piece where a line starts) -> (its whole lines, the rest)
    _lines: dict[tuple[int, int], tuple[Shared, bytes]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, text: str, html: bool) -> Base64Slot:
        pieces = [p if i % 2 else p.encode("utf-8") for i, p in enumerate(split_slots(text))]
        return cls(tuple(p for p in pieces if p), html)

    def fill_into(self, values: dict[str, str], out: list[bytes]) -> None:
        """Append the part's lines for one reader: equal to base64_lines(all octets) + CRLF."""
        carry, start = b"", len(out)
        for index, piece in enumerate(self.pieces):
            if isinstance(piece, str):
                carry += values[piece].encode("utf-8")
                continue
            offset = -len(carry) % B64_LINE  # octets of this piece that complete carry's line
            if len(piece) < offset + B64_LINE:  # no whole line of its own: encode it with carry
                carry += piece
                continue
            if carry:
                out.append(base64_lines(carry + piece[:offset]) + CRLF)
            lines, carry = self._whole_lines(index, piece, offset)
            out.append(lines)
        if carry or len(out) == start:  # an empty part is one empty line, as base64_lines gives
            out.append(base64_lines(carry) + CRLF)

    def _whole_lines(self, index: int, piece: bytes, offset: int) -> tuple[Shared, bytes]:
        key = (index, offset)
        found = self._lines.get(key)  # two threads may both encode it once: same result
        if found is None:
            rest = piece[offset:]
            whole = len(rest) // B64_LINE * B64_LINE
            found = self._lines[key] = (Shared(base64_lines(rest[:whole]) + CRLF), rest[whole:])
        return found
