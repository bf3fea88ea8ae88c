"""The send gate's SQL on both engines: slots reserved in blocks from the list's one row (never
overlapping, however many connections reserve at once), from the database's clock; the
shared policy streak; and a stop that holds for the runs started before it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from newsletter.store import send_gate
from newsletter.store.connect import open_store
from newsletter.store.db import Db


@pytest.fixture
def url(store_url: str) -> str:  # each engine in turn (tests/pg_cluster.py)
    return store_url


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    conn = open_store(url)
    send_gate.start_run(conn)
    yield conn
    conn.close()


def test_a_database_no_run_used_has_no_gate_row_and_no_stop(url: str) -> None:
    with open_store(url) as db:
        assert db.one("SELECT count(*) FROM send_gate")[0] == 0  # migrate-to wants it empty
        assert send_gate.state(db) == send_gate.GateState(0, "", "", None)
        send_gate.start_run(db)
        send_gate.start_run(db)  # a second run makes no second row
        assert db.one("SELECT count(*) FROM send_gate")[0] == 1


def test_an_idle_list_starts_now_and_blocks_follow_each_other(db: Db) -> None:
    first = send_gate.reserve(db, 4, 0.05)
    assert first.lead == 0 and first.count == 4  # nothing queued: the first slot is now
    assert abs(first.now - time.time()) < 2  # the database's clock (here: this machine's)
    second = send_gate.reserve(db, 4, 0.05)
    assert second.first == pytest.approx(first.first + 4 * 0.05, abs=1e-6)
    assert second.lead == pytest.approx(second.first - second.now)
    assert 0.1 < second.lead <= 0.2 + 1e-6  # waits for the first block's time to pass


def test_a_list_left_idle_saves_no_slots_up(db: Db) -> None:
    send_gate.reserve(db, 1, 0.01)
    time.sleep(0.1)
    later = send_gate.reserve(db, 5, 0.01)
    assert later.lead == 0 and later.first == pytest.approx(later.now, abs=0.01)


def test_a_next_slot_far_ahead_is_a_clock_stepped_back_not_a_queue(db: Db) -> None:
    db.execute("UPDATE send_gate SET next_slot = ?", (time.time() + 3600,))
    assert send_gate.reserve(db, 2, 0.5).lead == 0  # not an hour's wait: start again now
    db.execute("UPDATE send_gate SET next_slot = ?", (time.time() + 5,))
    assert 4 < send_gate.reserve(db, 2, 0.5).lead <= 5.01  # a queue this long is waited for


def test_connections_reserving_at_once_never_get_overlapping_slots(url: str, db: Db) -> None:
    blocks: list[send_gate.Slots] = []
    start = threading.Barrier(4)

    def reserver() -> None:
        conn = open_store(url)
        start.wait()
        try:
            for _ in range(25):
                got = send_gate.reserve(conn, 3, 0.001)
                with lock:
                    blocks.append(got)
        finally:
            conn.close()

    lock = threading.Lock()
    threads = [threading.Thread(target=reserver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(blocks) == 100
    ordered = sorted(blocks, key=lambda b: b.first)
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert after.first >= before.first + 3 * 0.001 - 1e-6, (before, after)


def test_the_policy_streak_counts_across_connections_and_a_success_resets_it(
        url: str, db: Db) -> None:
    other = open_store(url)
    assert send_gate.add_policy(db) == 1
    assert send_gate.add_policy(other) == 2  # another host's rejection continues the streak
    assert send_gate.state(db).streak == 2
    # A message begun before the last rejection (in flight while the relay turned) does not
    # end the streak; one begun after it does.
    assert send_gate.reset_streak(other, send_gate.start_run(other) - 1) == 2
    time.sleep(0.01)
    assert send_gate.reset_streak(other, send_gate.start_run(other)) == 0
    assert send_gate.state(db).streak == 0
    assert send_gate.add_policy(db) == 1
    other.close()


def test_a_stop_holds_for_runs_started_before_it_not_after(url: str, db: Db) -> None:
    running = send_gate.start_run(db)
    send_gate.add_policy(db)
    stop = send_gate.record_stop(db, "stopped after 5 policy rejections in a row", "host-a")
    assert stop.stopped_at is not None and stop.stopped_at >= running
    seen = send_gate.state(db)
    assert (seen.stop_reason, seen.stop_host, seen.streak) == (
        "stopped after 5 policy rejections in a row", "host-a", 0)  # the streak is used up
    with open_store(url) as later:
        time.sleep(0.01)
        assert send_gate.start_run(later) > seen.stopped_at  # a later run is not stopped
