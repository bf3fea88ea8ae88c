"""Import a subscriber CSV file: stream and validate it, leave out forgotten readers, merge the
rest, record who is new (and from which file:line), remember the file's digest and each merged
row's (an edited file's unchanged rows are not validated or merged again). The CLI prints the
result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from itertools import islice
from pathlib import Path

from newsletter.audience.consent import plan_import
from newsletter.audience.csv_rows import FileScan, checked_scan, row_digest, scan
from newsletter.audience.subscribers import CsvLayout, Rejected, merge_duplicate, open_csv, read_row
from newsletter.config import Config
from newsletter.model import Subscriber
from newsletter.store import consent as store_consent
from newsletter.store import import_rows, import_seen
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.store.reader import merge_rows, reader_owned
from newsletter.store.stamps import now_iso


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
    unchanged: int = 0  # rows as the last import of this file merged them: not read again
    validated: int = field(default=0, compare=False)  # rows that went through validation

    @property
    def changed(self) -> bool:
        """Worth a line even on the quiet send path."""
        return bool(self.added or self.updated or self.rejected or self.kept)


BATCH = 5000  # rows per read of the staging table and per merge: memory stays flat
# What a row's meaning depends on besides its cells and the file's header (the default
# language is added per import): a new release of the rules makes every row go through again.
RULES = f"rows 2; newsletter {version('newsletter')}; email-validator {version('email-validator')}"


@dataclass
class _Read:
    """What the streaming read of one file found, in file order."""

    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # which line of a repeated address won
    validated: int = 0


def import_file(db: Db, config: Config, path: str | Path, *, quiet: bool = False,
                override_reader: bool = False) -> FileImport | None:
    """Import one CSV file. quiet (the send path): None for a file unchanged since its last
    import, so a cron run over 100,000 rows stays cheap. A name or language the reader set
    themselves is kept, with a warning naming file:line, unless override_reader.

    The file streams: rows are validated one at a time and staged in a temporary table
    (which finds repeated addresses), then merged BATCH at a time in one transaction, so
    an import is all or nothing and its memory does not grow with the file."""
    key = str(Path(path).resolve())
    try:
        found: FileScan | None = scan(Path(path))  # one pass: digest, NUL bytes, encoding
    except OSError:
        found = None  # checked_scan reports the problem with the file's name
    if quiet and found and store_subscribers.imported_digest(db, key) == found.digest:
        return None
    found = checked_scan(Path(path), found)
    source, force = import_seen.source_of(db, key), set[int]()
    import_rows.begin(db)
    try:
        while True:
            read = _stage(db, Path(path), found, config.default_language, source, force)
            clashes = import_seen.clashes(db)
            if not clashes:
                break
            force |= clashes  # lines skipped as unchanged that a repeated address needs
            import_rows.begin(db)
        return _merge(db, config, str(path), read, override_reader, (key, found.digest))
    finally:
        import_rows.end(db)


def _stage(db: Db, path: Path, found: FileScan, default_language: str, source: int | None,
           force: set[int]) -> _Read:
    """Validate every row not unchanged since the last import of the file (forced lines are
    validated in any case); stage each address once (a later duplicate merged into it)."""
    read = _Read()
    with open_csv(path, found) as (layout, rows):
        context = _context(layout, default_language)
        while chunk := list(islice(rows, BATCH)):
            known = import_seen.add_lines(db, source, [(n, row_digest(context, row))
                                                       for n, row in chunk], force)
            batch: list[tuple[int, Subscriber]] = []
            for line, row in chunk:
                if line in known:
                    continue
                read.validated += 1
                item = read_row(path, layout, line, row, default_language=default_language)
                if isinstance(item, Rejected):
                    read.rejected.append(str(item))
                else:
                    batch.append(item)
            _stage_batch(db, path, batch, read)
    return read


def _context(layout: CsvLayout, default_language: str) -> str:
    """What gives a row's cells their meaning: the rules, the default language, the header."""
    return "\0".join([RULES, default_language, *layout.header])


def _stage_batch(db: Db, path: Path, batch: list[tuple[int, Subscriber]], read: _Read) -> None:
    staged = import_rows.find(db, {sub.email.lower() for _, sub in batch})
    pending: dict[str, tuple[int, Subscriber]] = {}
    repeated: list[int] = []  # first lines of addresses repeated within this batch
    for line, sub in batch:
        key = sub.email.lower()
        first = pending.get(key) or staged.get(key)
        if first is None:
            pending[key] = (line, sub)
            continue
        merged, note = merge_duplicate(path, first[0], first[1], line, sub)
        pending[key] = (first[0], merged)
        read.notes.append(note)
        repeated.append(first[0])
    import_rows.stage(db, [v for k, v in pending.items() if k not in staged],
                      [v for k, v in pending.items() if k in staged])
    import_rows.leave_out(db, repeated)


def _merge(db: Db, config: Config, path: str, read: _Read, override_reader: bool,
           imported: tuple[str, str]) -> FileImport:
    """Merge the staged rows BATCH at a time; the digest is recorded in the same transaction."""
    now = datetime.now(UTC)
    skipped: list[str] = []
    kept: list[str] = []
    added = updated = overridden = 0
    with db.transaction():
        forgotten, owned, stamp = store_consent.all_forgotten(db), reader_owned(db), now_iso()
        for page in import_rows.pages(db, BATCH):
            plan = plan_import(db, config, path, (s for _, s in page), (n for n, _ in page),
                               now, forgotten)
            skipped += plan.skipped
            import_rows.leave_out(db, {n for n, _ in page} - set(plan.lines))
            merged = merge_rows(db, plan.subscribers, owned, override_reader=override_reader,
                                stamp=stamp)
            store_consent.record_events(db, plan.events)  # "subscribed by CSV import, file:line"
            line_of = {s.email.lower(): n for s, n in zip(plan.subscribers, plan.lines,
                                                          strict=True)}
            kept += [choice.describe(f"{path}:{line_of.get(choice.email.lower(), '?')}")
                     for choice in merged.kept]
            added, updated = added + merged.added, updated + merged.updated
            overridden += merged.overridden
        unchanged = import_seen.unchanged(db)
        addresses = import_rows.count(db) + unchanged
        import_seen.remember(db, imported[0])
        store_subscribers.record_import(db, *imported)
    return FileImport(path, addresses, added, updated, len(read.notes), len(read.rejected),
                      len(kept), overridden, len(skipped),
                      tuple(read.rejected + read.notes + skipped + kept), unchanged,
                      read.validated)
