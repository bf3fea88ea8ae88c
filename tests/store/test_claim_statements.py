"""What a batch's claim costs the database, counted through the store, not timed: on
PostgreSQL the previous batch's outcomes are one UPDATE and the claim one statement, sent
together in one transaction (store.pg_claim), and each outcome's columns are what SQLite's
one statement per shape writes; a freeze leaves the planner knowing its rows (the claim's
window is read in key order from the first due row, never by sorting every due row)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.model import Edition, Settle
from newsletter.store import claims, ledger, send_gate
from newsletter.store.connect import open_store
from newsletter.store.db import Db, IntegrityError
from newsletter.store.editions import stamp
from newsletter.store.ledger import Freeze
from newsletter.store.postgres_db import PostgresDb

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ISSUE = "2026-11"


@pytest.fixture
def db(store_url: str) -> Iterator[Db]:  # each engine in turn (tests/pg_cluster.py)
    conn = open_store(store_url)
    yield conn
    conn.close()


@pytest.fixture
def pg(pg_url: str) -> Iterator[PostgresDb]:
    conn = open_store(pg_url)
    assert isinstance(conn, PostgresDb)
    yield conn
    conn.close()


def freeze_readers(db: Db, count: int) -> list[int]:
    """`count` active readers, frozen into ISSUE; returns their ids."""
    db.executemany("INSERT INTO subscribers (email, name, language, status, created_at, "
                   "updated_at) VALUES (?, ?, 'en', 'active', ?, ?)",
                   [(f"r{n}@x.org", f"r{n}", stamp(NOW), stamp(NOW)) for n in range(count)])
    ids = [r[0] for r in db.all("SELECT id FROM subscribers ORDER BY id")]
    edition = Edition(ISSUE, "en", "Hello", "pre", "<p>en</p>", "en", "reader")
    ledger.freeze_issue(db, Freeze(ISSUE, (edition,), [(i, "en", "") for i in ids]), NOW)
    return ids


def outcomes_of(batch: tuple) -> list[Settle]:  # noqa: ANN001
    """One of each outcome a worker records, in turn."""
    retry = NOW + timedelta(minutes=5)
    made = []
    for n, d in enumerate(batch):
        kind = n % 5
        made.append(Settle(d, "sent", "250 ok", f"<{d.subscriber_id}@x>") if kind == 0 else
                    Settle(d, "pending", "not attempted") if kind == 1 else
                    Settle(d, "deferred", "451 busy", retry_at=retry, first_deferred_at=NOW)
                    if kind == 2 else Settle(d, "failed", "550 no") if kind == 3 else
                    Settle(d, "unknown", "lost after the dot"))
    return made


def test_each_outcome_of_a_batch_writes_its_own_columns(db: Db) -> None:
    freeze_readers(db, 10)
    batch = claims.claim_due(db, ISSUE, "host:1", NOW, 10).deliveries
    later = NOW + timedelta(minutes=1)
    assert claims.claim_due(db, ISSUE, "host:1", later, 10, after=10_000,
                            settle_first=outcomes_of(batch)).settled == (
        "sent", "pending", "deferred", "failed", "unknown") * 2
    rows = db.all("SELECT state, last_reply, message_id, attempts, next_attempt_at, "
                  "first_deferred_at, updated_at FROM deliveries ORDER BY subscriber_id")
    ids = [d.subscriber_id for d in batch]
    at, retry = stamp(later), stamp(NOW + timedelta(minutes=5))
    assert [tuple(r) for r in rows[:5]] == [
        ("sent", "250 ok", f"<{ids[0]}@x>", 1, None, None, at),
        ("pending", "not attempted", None, 0, None, None, at),  # the attempt does not count
        ("deferred", "451 busy", None, 1, retry, stamp(NOW), at),
        ("failed", "550 no", None, 1, None, None, at),
        ("unknown", "lost after the dot", None, 1, None, None, at)]


def test_a_settle_leaves_a_row_no_longer_sending_as_it_is(db: Db) -> None:
    freeze_readers(db, 2)
    a, b = claims.claim_due(db, ISSUE, "host:1", NOW, 2).deliveries
    db.execute("UPDATE deliveries SET state = 'unknown' WHERE subscriber_id = ?",
               (a.subscriber_id,))  # recovered by another host meanwhile
    assert claims.settle_many(db, [Settle(a, "sent", "250", "<a@x>"),
                                   Settle(b, "sent", "250", "<b@x>")], NOW) == ("sent", "sent")
    assert [tuple(r) for r in db.all("SELECT state, message_id FROM deliveries ORDER BY "
                                     "subscriber_id")] == [("unknown", None), ("sent", "<b@x>")]


def test_a_postgresql_batch_is_one_transaction_of_two_statements(pg: PostgresDb) -> None:
    freeze_readers(pg, 40)
    first = claims.claim_due(pg, ISSUE, "host:1", NOW, 20)
    seen: list[str] = []
    pg.trace(seen.append)
    second = claims.claim_due(pg, ISSUE, "host:1", NOW, 20, after=first.last,
                              settle_first=outcomes_of(first.deliveries))
    pg.trace(None)
    assert len(second.deliveries) == 20 and len(second.settled) == 20
    # BEGIN, the 20 outcomes, the claim, COMMIT: sent together (Db.pipeline), one reply.
    assert [s.split()[0] for s in seen] == ["BEGIN", "UPDATE", "WITH", "COMMIT"]
    assert pg.one("SELECT count(*) FROM deliveries WHERE state = 'sending' AND "
                  "claimed_by = 'host:1'")[0] == 20


def test_a_claim_that_reads_the_send_gate_is_still_one_round_trip(pg: PostgresDb) -> None:
    freeze_readers(pg, 40)
    send_gate.start_run(pg)
    send_gate.record_stop(pg, "stopped after 5 policy rejections in a row", "other:1")
    seen: list[str] = []
    pg.trace(seen.append)
    got = claims.claim_due(pg, ISSUE, "host:1", NOW, 20, gate=True)
    pg.trace(None)
    assert [s.split()[0] for s in seen] == ["BEGIN", "SELECT", "WITH", "COMMIT"]
    assert got.gate is not None and got.gate.stop_host == "other:1"
    assert got.gate.stopped_at is not None and len(got.deliveries) == 20


def test_a_claim_brings_the_send_gate_only_when_asked(db: Db) -> None:
    freeze_readers(db, 2)
    assert claims.claim_due(db, ISSUE, "host:1", NOW).gate is None
    fresh = claims.claim_due(db, ISSUE, "host:1", NOW, gate=True).gate
    assert fresh == send_gate.GateState(0, "", "", None)  # no run has made the row yet


def test_a_failed_postgresql_pipeline_leaves_the_connection_usable(pg: PostgresDb) -> None:
    freeze_readers(pg, 2)
    (a,) = claims.claim_due(pg, ISSUE, "host:1", NOW).deliveries
    with pytest.raises(IntegrityError):  # a state the schema refuses, found at the end
        claims.claim_due(pg, ISSUE, "host:1", NOW, settle_first=Settle(a, "lost", ""))
    assert not pg.in_transaction
    assert [tuple(r) for r in pg.all("SELECT state FROM deliveries ORDER BY "
                                     "subscriber_id")] == [("sending",), ("pending",)]


def test_a_freeze_leaves_the_planner_its_rows(pg: PostgresDb) -> None:
    freeze_readers(pg, 300)
    # ANALYZE after the freeze's commit: without it the planner took the new rows for none,
    # read every due row by the state index and sorted them on each claim (O(N^2) a run).
    assert pg.one("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")[0] == 300
    plan = "\n".join(r[0] for r in pg.all(
        "EXPLAIN SELECT d.subscriber_id FROM deliveries d WHERE d.issue = ? AND "
        "d.subscriber_id > ? AND d.state = 'pending' ORDER BY d.subscriber_id LIMIT 20",
        (ISSUE, 0)))
    assert "Sort" not in plan
