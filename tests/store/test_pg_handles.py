"""serve's database handles on PostgreSQL (store.handles: one pool per process) and the mail
queue's claim there (FOR UPDATE SKIP LOCKED): against a real throwaway cluster."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pg_cluster import PgUnavailable, throwaway_cluster

from newsletter.store.connect import open_store
from newsletter.store.db import StoreError
from newsletter.store.handles import StoreHandles
from newsletter.store.mailqueue import claim_due_mail
from newsletter.store.postgres_db import open_postgres

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def queue(url: str, count: int) -> None:
    at = T0.isoformat()
    with open_store(url) as db, db.transaction():
        db.executemany("INSERT INTO mail_queue (kind, email, language, state, next_attempt_at, "
                       "created_at, updated_at) VALUES ('confirm', ?, 'en', 'pending', ?, ?, ?)",
                       [(f"r{n:03d}@example.com", at, at, at) for n in range(count)])


def test_a_claim_skips_rows_another_host_holds_instead_of_waiting(pg_url: str) -> None:
    queue(pg_url, 10)
    with open_postgres(pg_url) as other, open_store(pg_url) as db:
        other.execute("BEGIN")  # another host, mid-claim: its rows are locked
        held = [r[0] for r in other.all("SELECT id FROM mail_queue ORDER BY id LIMIT 5 "
                                        "FOR UPDATE")]
        db.execute("SET lock_timeout = '2s'")  # waiting would fail the claim, not hang it
        mine = claim_due_mail(db, "host-b", T0, 10, LEASE)
        other.execute("ROLLBACK")
        assert sorted(m.id for m in mine) == sorted(set(range(1, 11)) - set(held))
        assert [m.id for m in claim_due_mail(db, "host-b", T0, 10, LEASE)] == held


def test_hosts_claiming_the_queue_at_once_never_claim_a_row_twice(pg_url: str) -> None:
    queue(pg_url, 120)
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(3)

    def drain(owner: str) -> None:
        got = claimed.setdefault(owner, [])
        with open_store(pg_url) as db:
            start.wait()
            while batch := claim_due_mail(db, owner, T0, 5, LEASE):
                got.extend(m.id for m in batch)

    threads = [threading.Thread(target=drain, args=(f"host-{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [i for ids in claimed.values() for i in ids]
    assert sorted(every) == list(range(1, 121))  # each row once, none left out


def server_connections(url: str) -> int:
    with open_postgres(url) as db:
        return db.one("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                      "current_database() AND application_name = 'newsletter' AND "
                      "pid <> pg_backend_pid()")[0]


def test_one_pool_per_process_bounds_the_server_connections(pg_url: str) -> None:
    handles = StoreHandles(pg_url, size=3)
    try:
        def borrow() -> None:
            for _ in range(20):
                with handles.db() as db:
                    db.one("SELECT count(*) FROM mail_queue")

        threads = [threading.Thread(target=borrow) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert 1 <= server_connections(pg_url) <= 3  # 160 borrows, at most `size` logins
    finally:
        handles.close()
    deadline = time.monotonic() + 10  # a backend leaves pg_stat_activity just after
    while server_connections(pg_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_connections(pg_url) == 0  # serve's shutdown closes them
    with pytest.raises(StoreError, match="closed"):
        handles.db()


def test_the_pool_replaces_connections_a_database_restart_broke(tmp_path) -> None:  # noqa: ANN001
    try:
        with throwaway_cluster() as cluster:  # ours: the session's cluster is not restarted
            url = cluster.url(cluster.new_database())
            handles = StoreHandles(url, size=2)
            try:
                with handles.db() as db:
                    db.one("SELECT 1")
                cluster.stop()
                with pytest.raises(StoreError), handles.db() as db:  # down: an error, soon
                    db.one("SELECT 1")
                cluster.start()
                with handles.db() as db:  # the broken connection was not handed out again
                    assert db.one("SELECT count(*) FROM mail_queue")[0] == 0
            finally:
                handles.close()
    except PgUnavailable as exc:
        pytest.skip(str(exc))
