"""A subscriber CSV file as a stream of raw rows: its digest and encoding from one pass over the
bytes, its delimiter from the first line, then (line, cells) per row. Nothing here holds more
than one chunk or one row, so a file of a million rows reads in flat memory."""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from newsletter.errors import InputError

_CHUNK = 1 << 20
_DELIMITERS = ",;\t"


@dataclass(frozen=True)
class FileScan:
    """What one pass over the bytes tells: the sha256 (the import skips an unchanged file),
    whether it holds NUL bytes, and whether it is UTF-8 (else an Excel export in cp1252)."""

    digest: str
    has_nul: bool
    utf8: bool


def scan(path: Path) -> FileScan:
    """One pass over the file's bytes, a chunk at a time. OSError if it cannot be read."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    has_nul, utf8 = False, True
    with path.open("rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
            has_nul = has_nul or b"\x00" in chunk
            utf8 = utf8 and _decodes(decoder, chunk, final=False)
    utf8 = utf8 and _decodes(decoder, b"", final=True)
    return FileScan(digest.hexdigest(), has_nul, utf8)


def _decodes(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool) -> bool:
    try:
        decoder.decode(chunk, final)  # the text itself is not kept: only whether it decodes
    except UnicodeDecodeError:
        return False
    return True


def checked_scan(path: Path, found: FileScan | None = None) -> FileScan:
    """scan (unless found already), with the reasons a file cannot be imported as
    InputErrors naming it."""
    try:
        found = found or scan(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    if found.has_nul:
        raise InputError("contains NUL bytes (is it a UTF-16 or binary file? save as CSV UTF-8)",
                         where=str(path))
    return found


@contextmanager
def open_rows(path: Path, found: FileScan
              ) -> Iterator[tuple[csv.Dialect, Iterator[tuple[int, list[str]]]]]:
    """(dialect, rows) of a scanned file: UTF-8 with or without BOM, or cp1252 with
    undefined bytes replaced; the delimiter is the one of , ; or tab the first line has most."""
    encoding, errors = ("utf-8-sig", "strict") if found.utf8 else ("cp1252", "replace")
    with path.open(encoding=encoding, errors=errors, newline="") as text:
        dialect = _sniff(text)
    with path.open(encoding=encoding, errors=errors, newline="") as text:
        yield dialect, _rows(csv.reader(text, dialect), path)


def _sniff(text: TextIO) -> csv.Dialect:
    """The first line ends at the first \\n (a file of bare \\r is one long line, as ever)."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    for piece in iter(lambda: text.read(_CHUNK), ""):
        line = piece.split("\n", 1)[0]
        for d in _DELIMITERS:
            counts[d] += line.count(d)
        if len(line) < len(piece):
            break
    delimiter = max(_DELIMITERS, key=counts.__getitem__)
    dialect = csv.excel()
    dialect.delimiter = delimiter if counts[delimiter] else ","
    return dialect


def _rows(reader, path: Path) -> Iterator[tuple[int, list[str]]]:  # noqa: ANN001 - csv reader
    """(first physical line, cells) per row; csv.Error becomes an InputError naming the line."""
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. an unclosed quote swallowing the rest of a big file
            raise InputError(f"line {end + 1}: {exc}", where=str(path)) from exc
        # line_num is the row's last physical line; a quoted cell may span several
        start, end = end + 1, reader.line_num
        yield start, row


def row_digest(context: str, row: list[str]) -> str:
    """A row's cells under what gives them their meaning (context: the header, the default
    language, the rules' version), as 32 hex digits. NUL cannot occur in a cell (checked_scan
    refuses the file), so it separates them unambiguously."""
    data = "\0".join([context, *row]).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()
