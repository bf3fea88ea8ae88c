"""Bounce processing's bookkeeping: which reports were processed (a report counts once),
a dry run's transaction that is always rolled back, and this month's event totals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from newsletter.store.db import Db


def already_processed(db: Db, key: str) -> bool:
    return db.execute("SELECT 1 FROM processed_reports WHERE report_key = ?",
                      (key,)).fetchone() is not None


def record_processed(db: Db, key: str, at: str, outcome: str) -> None:
    """The report's key and what it did, in the caller's transaction."""
    db.execute("INSERT INTO processed_reports (report_key, processed_at, outcome) "
               "VALUES (?, ?, ?)", (key, at, outcome[:1000]))


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction so that Db.transaction rolls it back."""


@contextmanager
def rolled_back(db: Db) -> Iterator[None]:
    """--dry-run: do everything in one transaction and roll it back, so the tally is exact.
    Db.transaction, not a BEGIN of its own: each engine begins (and locks) in its own way."""
    try:
        with db.transaction():
            yield
            raise _DryRun
    except _DryRun:
        pass


def event_counts_since(db: Db, start: str) -> dict[str, int]:
    """kind -> how many bounce events at or after start."""
    return {r[0]: r[1] for r in db.execute(
        "SELECT kind, count(*) FROM bounce_events WHERE at >= ? GROUP BY kind", (start,))}


def top_sender_refusals(db: Db, start: str, limit: int = 3) -> list[tuple[str, str, int]]:
    """(reason, domain, count) of the commonest sender-side refusals since start."""
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT reason, domain, count(*) AS n FROM bounce_events WHERE kind = 'ours' AND "
        "at >= ? GROUP BY reason, domain ORDER BY n DESC, domain LIMIT ?", (start, limit))]
