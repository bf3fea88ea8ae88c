"""What a claim costs on SQLite as the list grows, counted in the engine's own steps (its
virtual machine's instructions), not timed: a batch's claim reads its window by key and
finds its rows by key, so its work does not depend on how many rows are still due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from newsletter.model import Edition, Settle
from newsletter.store import claims, ledger
from newsletter.store.connect import open_store
from newsletter.store.editions import stamp
from newsletter.store.ledger import Freeze
from newsletter.store.sqlite_db import SqliteDb

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ISSUE = "2026-11"
READERS = 3000
pytestmark = pytest.mark.sqlite_only  # SQLite's own steps (PostgreSQL: test_claim_statements)


@pytest.fixture
def db(tmp_path) -> Iterator[SqliteDb]:  # noqa: ANN001
    conn = open_store(tmp_path / "newsletter.db")
    assert isinstance(conn, SqliteDb)
    conn.executemany("INSERT INTO subscribers (email, name, language, status, created_at, "
                     "updated_at) VALUES (?, ?, 'en', 'active', ?, ?)",
                     [(f"r{n}@x.org", f"r{n}", stamp(NOW), stamp(NOW))
                      for n in range(READERS)])
    ids = [r[0] for r in conn.all("SELECT id FROM subscribers ORDER BY id")]
    edition = Edition(ISSUE, "en", "Hello", "pre", "<p>en</p>", "en", "reader")
    ledger.freeze_issue(conn, Freeze(ISSUE, (edition,), [(i, "en", "") for i in ids]), NOW)
    yield conn
    conn.close()


def steps_of_a_batch(db: SqliteDb, after: int) -> int:
    """The engine's steps (in hundreds) for one claim of 20 rows after `after` that records
    the previous batch of 20 as sent, as a worker's batch does."""
    previous = claims.claim_due(db, ISSUE, "host:1", NOW, 20, after=after)
    done = [Settle(d, "sent", "250 ok", f"<{d.subscriber_id}@x>")
            for d in previous.deliveries]
    count = [0]

    def step() -> int:
        count[0] += 1
        return 0  # go on

    db.progress(step, 100)
    claimed = claims.claim_due(db, ISSUE, "host:1", NOW, 20, after=previous.last,
                               settle_first=done)
    db.progress(None)
    assert len(claimed.deliveries) == 20 and claimed.settled == ("sent",) * 20
    return count[0]


def test_a_claim_costs_the_same_with_few_or_many_rows_still_due(db: SqliteDb) -> None:
    at_the_start = steps_of_a_batch(db, 0)  # nearly all 3,000 rows due after it
    db.execute("UPDATE deliveries SET state = 'sent' WHERE subscriber_id <= ?",
               (READERS - 60,))
    at_the_end = steps_of_a_batch(db, READERS - 60)  # none due after it
    # The claim's UPDATE once read every due row by deliveries_by_state (state, issue) to
    # find its 20: 3,000 rows due cost 8x the steps of none (304 against 39 hundred).
    assert at_the_start < 1.5 * at_the_end
