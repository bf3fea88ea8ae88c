"""Claims when several senders share one PostgreSQL database: FOR UPDATE SKIP LOCKED hands
each due row to exactly one connection (SQLite keeps BEGIN IMMEDIATE); and whether the
configured store exists, asked without creating one (`check` on either engine)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.deliver.ledger import OWNER, recover_interrupted
from newsletter.model import Edition
from newsletter.store import claims, ledger
from newsletter.store.connect import open_store, store_exists
from newsletter.store.db import Db
from newsletter.store.editions import stamp

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ISSUE = "2026-11"


@pytest.mark.sqlite_only  # whether the SQLite file is there (a server URL always counts)
def test_store_exists_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    assert not store_exists(path) and not store_exists(f"sqlite:///{path}")
    assert not path.exists()
    open_store(path).close()
    assert store_exists(path) and store_exists(f"sqlite:///{path}")
    # A server's database is the operator's to make: any server URL counts as there.
    assert store_exists("postgresql://nl@db.example:5432/newsletter")


def add_due(db: Db, count: int) -> list[int]:
    """`count` active readers with a pending row each in ISSUE; returns their ids."""
    stamp = NOW.isoformat()
    db.executemany("INSERT INTO subscribers (email, name, language, status, created_at, "
                   "updated_at) VALUES (?, ?, 'en', 'active', ?, ?)",
                   [(f"r{n}@x.org", f"r{n}", stamp, stamp) for n in range(count)])
    ids = [r[0] for r in db.all("SELECT id FROM subscribers ORDER BY id")]
    db.executemany("INSERT INTO deliveries (issue, subscriber_id, language, state, attempts, "
                   "updated_at) VALUES (?, ?, 'en', 'pending', 0, ?)",
                   [(ISSUE, i, stamp) for i in ids])
    return ids


def claim_all(url: str, names: list[str], batch: int) -> dict[str, list[int]]:
    """Each name claims on its own connection and thread, all starting at once, until its
    claims find nothing due."""
    claimed: dict[str, list[int]] = {name: [] for name in names}
    start = threading.Barrier(len(names))

    def worker(name: str) -> None:
        conn, after = open_store(url), 0
        start.wait()
        try:
            while not (got := claims.claim_due(conn, ISSUE, name, NOW, batch,
                                               after=after)).exhausted:
                claimed[name] += [d.subscriber_id for d in got.deliveries]
                after = got.last
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return claimed


@pytest.mark.parametrize("senders,batch", [(2, 1), (3, 4)])
def test_concurrent_senders_claim_every_row_exactly_once(pg_url: str, senders: int,
                                                         batch: int) -> None:
    setup = open_store(pg_url)
    ids = add_due(setup, 400)
    claimed = claim_all(pg_url, [f"host-{n}:1" for n in range(senders)], batch)
    every = [i for got in claimed.values() for i in got]
    assert sorted(every) == ids  # none twice, none left out
    owners = {r[0]: r[1] for r in setup.all(
        "SELECT subscriber_id, claimed_by FROM deliveries WHERE state = 'sending'")}
    assert owners == {i: name for name, got in claimed.items() for i in got}
    setup.close()


def test_a_claim_skips_rows_another_sender_holds_without_waiting(pg_url: str) -> None:
    holder, other = open_store(pg_url), open_store(pg_url)
    ids = add_due(holder, 3)
    got: list[int] = []
    with holder.transaction(immediate=False):
        # Another sender mid-claim: its rows are locked and not yet committed as sending.
        holder.all("SELECT subscriber_id FROM deliveries WHERE subscriber_id <= ? "
                   "FOR UPDATE", (ids[1],))
        thread = threading.Thread(target=lambda: got.extend(
            d.subscriber_id for d in claims.claim_due(other, ISSUE, "b", NOW, 5).deliveries))
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive()  # it did not queue behind the holder's locks
    assert got == [ids[2]]
    holder.close(), other.close()


def test_sqlite_claims_keep_their_one_writer(tmp_path: Path) -> None:
    url = str(tmp_path / "newsletter.db")
    setup = open_store(url)
    ids = add_due(setup, 120)
    setup.close()
    claimed = claim_all(url, ["a:1", "b:1", "c:1"], 2)
    assert sorted(i for got in claimed.values() for i in got) == ids


LEASE = timedelta(seconds=300)


def lease_of(db: Db, sub_id: int) -> tuple:
    return tuple(db.one("SELECT state, lease_until FROM deliveries WHERE subscriber_id = ?",
                        (sub_id,)))


def test_a_claim_holds_for_its_lease_and_renewal_extends_it(pg_url: str) -> None:
    db = open_store(pg_url)
    first, second = add_due(db, 2)
    claims.claim_due(db, ISSUE, "a:1", NOW, 1, lease=LEASE)
    assert lease_of(db, first) == ("sending", stamp(NOW + LEASE))
    later = NOW + timedelta(seconds=200)
    assert claims.renew_leases(db, "a:1", later + LEASE) == 1
    assert claims.renew_leases(db, "b:1", later + LEASE) == 0  # only the owner's own rows
    assert claims.recover_expired(db, NOW + LEASE + timedelta(seconds=1)) == 0  # renewed
    assert claims.recover_expired(db, later + LEASE + timedelta(seconds=1)) == 1
    assert lease_of(db, first)[0] == "unknown"
    assert lease_of(db, second) == ("pending", None)
    # A renewal after another host recovered the row leaves it unknown.
    assert claims.renew_leases(db, "a:1", later + 2 * LEASE) == 0
    db.close()


def other_host(db: Db, count: int, lease: timedelta) -> list[int]:
    """Rows claimed by a sender on another host (its process is nothing this host sees)."""
    ids = add_due(db, count)
    claims.claim_due(db, ISSUE, "elsewhere:4242:boot:1", NOW, count, lease=lease)
    return ids


def test_postgresql_recovers_another_hosts_claims_only_when_their_lease_is_out(
        pg_url: str) -> None:
    db = open_store(pg_url)
    ids = other_host(db, 2, LEASE)
    assert recover_interrupted(db, NOW + timedelta(seconds=10)) == 0  # it may be sending now
    assert {lease_of(db, i)[0] for i in ids} == {"sending"}
    assert recover_interrupted(db, NOW + LEASE + timedelta(seconds=1)) == 2
    assert {lease_of(db, i)[0] for i in ids} == {"unknown"}
    db.close()


def test_postgresql_recovers_this_hosts_dead_process_at_once(pg_url: str) -> None:
    db = open_store(pg_url)
    (sub_id,) = add_due(db, 1)
    host, _pid, rest = f"{OWNER}::".split(":", 2)
    owner = f"{host}:99999999:{rest.rstrip(':')}"  # this machine, a PID past pid_max
    claims.claim_due(db, ISSUE, owner, NOW, 1, lease=LEASE)
    assert recover_interrupted(db, NOW + timedelta(seconds=1)) == 1
    assert lease_of(db, sub_id)[0] == "unknown"
    db.close()


@pytest.mark.sqlite_only  # SQLite's PID/boot-id recovery; PostgreSQL's leases are above
def test_sqlite_recovers_by_process_identity_as_before(tmp_path: Path) -> None:
    db = open_store(tmp_path / "newsletter.db")
    ids = other_host(db, 2, LEASE)  # the lease is recorded; the identity decides
    assert recover_interrupted(db, NOW + timedelta(seconds=10)) == 2
    assert {lease_of(db, i)[0] for i in ids} == {"unknown"}
    db.close()


def test_two_hosts_freezing_at_once_freeze_once(pg_url: str) -> None:
    setup = open_store(pg_url)
    stamp_ = NOW.isoformat()
    setup.executemany("INSERT INTO subscribers (email, name, language, status, created_at, "
                      "updated_at) VALUES (?, ?, 'en', 'active', ?, ?)",
                      [(f"r{n}@x.org", f"r{n}", stamp_, stamp_) for n in range(50)])
    ids = [r[0] for r in setup.all("SELECT id FROM subscribers ORDER BY id")]
    queued: dict[str, int] = {}
    start = threading.Barrier(2)

    def freeze(name: str) -> None:
        db = open_store(pg_url)
        edition = Edition(ISSUE, "en", f"From {name}", "pre", "<p>x</p>", "en", "reader")
        start.wait()
        try:
            queued[name] = ledger.freeze_issue(
                db, ledger.Freeze(ISSUE, (edition,), [(i, "en", "") for i in ids]), NOW)
        finally:
            db.close()

    threads = [threading.Thread(target=freeze, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(queued.values()) == [0, 50]  # one freezes; the other finds it frozen
    winner = next(n for n, rows in queued.items() if rows)
    assert setup.all("SELECT subject FROM editions WHERE issue = ?", (ISSUE,)) == [
        (f"From {winner}",)]
    assert setup.one("SELECT count(*) FROM deliveries")[0] == 50
    setup.close()
