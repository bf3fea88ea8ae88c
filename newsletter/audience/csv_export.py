"""The subscriber list as a CSV export that is safe to open in a spreadsheet, and the guard
(against CSV injection) that import takes away again."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from newsletter import safe_files
from newsletter.model import Subscriber

# CSV injection: a spreadsheet runs a cell as a formula when it starts with = + - @ (or their
# full-width forms, or TAB or CR), and a spreadsheet that splits on ";" or TAB (Excel's
# default in much of Europe) starts a new cell after any ",", ";", TAB or line break inside
# ours. A single quote there makes it text; one more quote goes before quotes already there,
# so that import takes exactly one away and an export imports back unchanged.
_TRIGGERS = "=+\\-@\t\r\uff1d\uff0b\uff0d\uff20"
_GUARD_RE = re.compile(f"(^|[,;\t\r\n])([ \"]*)(?='*[{_TRIGGERS}])")
_UNGUARD_RE = re.compile(f"(^|[,;\t\r\n])([ \"]*)'(?='*[{_TRIGGERS}])")
EXPORT_COLUMNS = ("email", "name", "language", "tags", "status", "reason")


def export_cell(value: str) -> str:
    """value, safe to open in a spreadsheet whatever the separator it splits on."""
    return _GUARD_RE.sub(r"\1\2'", value)


def unguard_cell(value: str) -> str:
    """What export_cell was given: its guard quotes taken away again."""
    return _UNGUARD_RE.sub(r"\1\2", value)


def export_rows(subscribers: Iterable[Subscriber]) -> Iterator[list[str]]:
    """The header, then one guarded row per subscriber."""
    yield list(EXPORT_COLUMNS)
    for sub in subscribers:
        yield [export_cell(v) for v in (sub.email, sub.name, sub.language, ";".join(sub.tags),
                                        sub.status, sub.reason)]


def write_export(path: Path, subscribers: Iterable[Subscriber], *, root: Path) -> int:
    """Write the list to path: every cell quoted and guarded, owner-only (0600: personal
    data), never through a symbolic link (safe_files). Returns the number of subscribers."""
    count = 0

    def lines() -> Iterator[bytes]:  # streamed: memory stays flat in the size of the list
        nonlocal count
        for number, row in enumerate(export_rows(subscribers)):
            line = io.StringIO(newline="")
            csv.writer(line, quoting=csv.QUOTE_ALL).writerow(row)
            count = number
            yield line.getvalue().encode("utf-8")

    safe_files.write_chunks(path, lines(), root=root, mode=0o600)
    return count
