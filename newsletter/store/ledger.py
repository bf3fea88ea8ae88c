"""SQL of the send ledger: one delivery row per (ledger key, subscriber) with its state. This
module freezes issues and late editions (plain data decided in Python, or a plain issue's
active readers in one statement, written in one transaction) and answers `status`;
store.claims claims and settles rows.

States: pending -> sending -> sent | deferred | failed | unknown | suppressed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from newsletter.model import Edition
from newsletter.store import segments as store_segments
from newsletter.store.consent import forgotten_delivery_counts
from newsletter.store.db import Db, StoreError
from newsletter.store.editions import (
    base_issue,
    has_edition,
    insert_editions,
    is_frozen,
    stamp,
)
from newsletter.store.segments import SegmentCount

STATES = ("pending", "sending", "sent", "deferred", "failed", "unknown", "suppressed")
OPEN_STATES = ("pending", "sending", "deferred")

DeliveryRow = tuple[int, str, str]  # (subscriber id, edition language, variant "" or tags)


@dataclass(frozen=True)
class Freeze:
    """What one freeze writes, decided by the caller: the editions, the pending rows, and for
    an issue with segments its variants and the counts `status` shows. `rows` may be a
    generator: it is consumed inside the transaction, a chunk at a time, so a generator over
    the active readers sees the audience as of the freeze and keeps memory flat."""

    key: str  # the ledger key: ISSUE, or ISSUE+LANG for a late edition
    editions: tuple[Edition, ...]  # an issue's: the default one first; a late one: just it
    rows: Iterable[DeliveryRow]
    # A plain issue's audience: every reader active at the freeze, their edition this
    # function of their language (asked once per language), written in SQL without a row
    # through Python (segments.insert_active); with `rows`, which may then be empty.
    everyone: Callable[[str], str] | None = None
    variants: tuple[tuple[str, Edition], ...] = ()  # (variant key, its rendering)
    counts: tuple[SegmentCount, ...] = ()
    item_ids: tuple[str, ...] = ()  # feed items this issue carries (never repeated later)


def freeze_issue(db: Db, freeze: Freeze, now: datetime) -> int:
    """Once per issue, even when two senders start together: the second finds the issue
    frozen and writes nothing. Returns the rows queued (0 if it was frozen already)."""
    with db.transaction():
        if is_frozen(db, freeze.key):
            return 0
        rows = _write(db, freeze, stamp(now))
    _analyze(db, rows)
    return rows


def freeze_late(db: Db, freeze: Freeze, now: datetime) -> int:
    """Add one language edition to a frozen issue with its rows (key ISSUE+LANG); once: a
    second call finds the edition frozen and adds nothing."""
    (edition,) = freeze.editions
    with db.transaction():
        if has_edition(db, edition.issue, edition.language):
            return 0
        rows = _write(db, freeze, stamp(now))
    _analyze(db, rows)
    return rows


def _analyze(db: Db, rows: int) -> None:
    """PostgreSQL's planner learns of the rows a freeze just committed (autovacuum would,
    a minute or more later): without it, it took them for none and read each claim's window
    by the state index, every due row sorted per claim, O(N^2) over a run (10,000 rows:
    8 ms a claim at the end, against 0.1 ms). An optimisation: a failure is the next
    statement's to report."""
    if rows and db.engine == "postgresql":
        with contextlib.suppress(StoreError):
            db.execute("ANALYZE deliveries")


def _write(db: Db, freeze: Freeze, frozen_at: str) -> int:
    insert_editions(db, freeze.editions, frozen_at)
    rows = 0
    if freeze.everyone is not None:
        rows += store_segments.insert_active(db, freeze.key, freeze.everyone, frozen_at)
    for chunk in _chunks(freeze.rows, 1000):
        rows += store_segments.insert_deliveries(db, freeze.key, chunk, frozen_at)
    store_segments.insert_variants(db, base_issue(freeze.key), freeze.variants)
    store_segments.insert_counts(db, freeze.key, freeze.counts)
    db.executemany("INSERT INTO sent_items (item_id, issue) VALUES (?, ?) "
                   "ON CONFLICT DO NOTHING",
                   [(i, freeze.key) for i in freeze.item_ids])
    return rows


def _chunks(rows: Iterable[DeliveryRow], size: int) -> Iterator[list[DeliveryRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def sent_to_active(db: Db, issue: str) -> list[tuple[int, str, str]]:
    """(subscriber id, their language, edition sent) of the issue's sent rows whose reader
    is still active: who a late edition may be for."""
    return [(r[0], r[1], r[2]) for r in db.execute(
        "SELECT d.subscriber_id, s.language, d.language FROM deliveries d JOIN subscribers "
        "s ON s.id = d.subscriber_id WHERE d.issue = ? AND d.state = 'sent' AND s.status "
        "= 'active'", (issue,))]


# --- what `status` shows ---------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRow:
    email: str
    state: str  # failed or unknown
    last_reply: str
    updated_at: str


def counts(db: Db, issue: str | None = None) -> dict[str, dict[str, int]]:
    """ledger key -> state -> rows (every state present), with the rows of forgotten
    readers, which the ledger keeps as counts."""
    query = "SELECT issue, state, count(*) FROM deliveries {} GROUP BY issue, state ORDER BY issue"
    rows = db.execute(query.format("WHERE issue = ?"), (issue,)) if issue else db.execute(
        query.format(""))
    result: dict[str, dict[str, int]] = {}
    for iss, state, n in rows:
        result.setdefault(iss, dict.fromkeys(STATES, 0))[state] = n
    for iss, state, n in forgotten_delivery_counts(db, issue):
        states = result.setdefault(iss, dict.fromkeys(STATES, 0))
        states[state] = states.get(state, 0) + n
    return dict(sorted(result.items()))


def problem_rows(db: Db, issue: str) -> list[ProblemRow]:
    return [ProblemRow(r[0], r[1], r[2], r[3]) for r in db.execute(
        "SELECT s.email, d.state, d.last_reply, d.updated_at FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE d.issue = ? AND d.state IN ('failed', 'unknown') "
        "ORDER BY d.state, s.email", (issue,))]


def fallbacks(db: Db, issue: str) -> list[tuple[str, str, int]]:
    """(subscriber language, edition sent instead, count) where a subscriber's language had
    no edition of this issue."""
    rows = db.all(
        "SELECT s.language, d.language, count(*) FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE d.issue = ? AND d.language != s.language "
        "GROUP BY s.language, d.language ORDER BY s.language", (issue,))
    # fr-CA sent the fr edition is no fallback (compared here: no engine's string functions)
    return [(r[0], r[1], r[2]) for r in rows if r[0].split("-", 1)[0] != r[1]]


def edition_counts(db: Db, issue: str) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute(
        "SELECT language, count(*) FROM deliveries WHERE issue = ? GROUP BY language "
        "ORDER BY language", (issue,))}


def open_issues(db: Db) -> list[str]:
    """Ledger keys with rows still pending, sending or deferred."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT issue FROM deliveries WHERE state IN ('pending', 'sending', 'deferred') "
        "ORDER BY issue")]


def all_issues(db: Db) -> list[str]:
    return [r[0] for r in db.execute("SELECT DISTINCT issue FROM deliveries")]
