"""Import a subscriber CSV file: parse it, leave out forgotten readers, merge the rest, record
who is new (and from which file:line), remember the file's digest. The CLI prints the result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.audience.consent import plan_import, record_new
from newsletter.audience.subscribers import read_csv
from newsletter.config import Config
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.store.reader import merge_subscribers


@dataclass(frozen=True)
class FileImport:
    """One file's import: its counts, and its warnings in the order they arose."""

    path: str
    addresses: int  # rows that became an address to merge, forgotten readers included
    added: int
    updated: int
    merged: int  # duplicate rows merged into one
    rejected: int
    kept: int  # a name or language the reader set themselves, kept over the CSV's
    overridden: int  # ... replaced by the CSV's (override_reader)
    skipped: int  # forgotten readers, never added again by an import
    warnings: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Worth a line even on the quiet send path."""
        return bool(self.added or self.updated or self.rejected or self.kept)


def import_file(db: Db, config: Config, path: str | Path, *, quiet: bool = False,
                override_reader: bool = False) -> FileImport | None:
    """Import one CSV file. quiet (the send path): None for a file unchanged since its last
    import, so a cron run over 100,000 rows stays cheap. A name or language the reader set
    themselves is kept, with a warning naming file:line, unless override_reader."""
    key = str(Path(path).resolve())
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        digest = ""  # read_csv reports the problem with the file's name
    if quiet and digest and store_subscribers.imported_digest(db, key) == digest:
        return None
    parsed = read_csv(Path(path), default_language=config.default_language)
    warnings = [str(row) for row in parsed.rejected] + list(parsed.notes)
    plan = plan_import(db, config, str(path), parsed.subscribers, parsed.lines,
                       datetime.now(UTC))
    warnings += plan.skipped
    merged = merge_subscribers(db, plan.subscribers, override_reader=override_reader)
    record_new(db, plan.events)  # "subscribed by CSV import, file:line"
    line_of = {s.email.lower(): n for s, n in zip(parsed.subscribers, parsed.lines, strict=True)}
    warnings += [choice.describe(f"{path}:{line_of.get(choice.email.lower(), '?')}")
                 for choice in merged.kept]
    store_subscribers.record_import(db, key, digest)
    return FileImport(str(path), len(parsed.subscribers), merged.added, merged.updated,
                      parsed.merged, len(parsed.rejected), len(merged.kept), merged.overridden,
                      len(plan.skipped), tuple(warnings))
