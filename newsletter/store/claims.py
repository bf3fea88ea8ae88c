"""SQL of the ledger's claims: claim the next due rows for an owner, settle an outcome,
recover the claims of a sender that died, and the operator's resend of unknown rows.

A row is claimed (committed as `sending`, with its owner) before its SMTP transaction, so a
crash leaves evidence, never a resend. Two connections never claim the same row: on SQLite
each claim is one BEGIN IMMEDIATE transaction (one writer at a time); on PostgreSQL, where
senders on several hosts share the database, the window is read with FOR UPDATE SKIP LOCKED,
so each sender locks only its own rows and never waits behind another's claim, and a
batch's transaction is one round trip (store.pg_claim). The other
operations take the store's write lock on both engines (postgres_db.WRITE_LOCK).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter.model import Delivery, Settle
from newsletter.store import pg_claim, send_gate
from newsletter.store.db import Db, Row
from newsletter.store.editions import stamp

INTERRUPTED = "interrupted during delivery (crash or kill); the message may have been sent"

# Due: pending, or deferred with its retry time reached. A row deferred during this run is
# not due again in it even when its retry time is (the last retry falls at the end of the
# retry period, which may be a minute before the run's start): one attempt per row per run.
_DUE = ("(d.state = 'pending' OR (d.state = 'deferred' AND d.next_attempt_at <= ? "
        "AND d.updated_at < ?))")


@dataclass(frozen=True)
class Claims:
    """What one claim_due did."""

    deliveries: tuple[Delivery, ...]  # now `sending`, owned by the caller
    suppressed: int  # due rows of readers no longer active: `suppressed` instead
    settled: tuple[str, ...] = ()  # the states settle_first wrote, in its order
    last: int = 0  # the highest subscriber id looked at: the next call's `after`
    gate: send_gate.GateState | None = None  # the list's send gate, read with the claim

    @property
    def exhausted(self) -> bool:
        """Nothing due was left in the key."""
        return not self.deliveries and not self.suppressed


def claim_due(db: Db, key: str, owner: str, now: datetime, limit: int = 1, *,
              after: int = 0, due_by: datetime | None = None,
              settle_first: Settle | Sequence[Settle] | None = None, transport: str = "",
              lease: timedelta | None = None, gate: bool = False) -> Claims:
    """Claim the next `limit` due rows of a ledger key (in subscriber order) for `owner`,
    committed; a row whose reader is no longer active is suppressed instead (suppression is
    checked at claim time). Due is judged at `due_by` (the run's start; default now).

    `after`: the previous call's Claims.last. Rows up to it are not due again within a run
    (sent, settled or deferred past the run's start), and the scan starts there, so a run
    over N rows costs O(N), not O(N^2) over the rows already sent.

    settle_first records the caller's previous outcomes (its last batch) in the same
    transaction, so a batch of `limit` messages costs one commit. transport (e.g.
    'smtp://relay:587', 'maildir:outbox') is recorded on each claimed row: the last
    attempt's transport is the one that delivered it.
    lease: the claim holds until now + lease (renew_leases extends it; None records none).
    gate: also read the list's send gate (Claims.gate) in the same transaction, so that the
    check for another sender's stop costs no round trip of its own.
    """
    at, due = stamp(now), stamp(due_by or now)
    until = stamp(now + lease) if lease is not None else None
    outcomes = [settle_first] if isinstance(settle_first, Settle) else settle_first or ()
    if db.engine == "postgresql":
        # Row locks instead of the one write lock: rows another sender holds are skipped,
        # and READ COMMITTED re-checks due on a row committed meanwhile (claimed: not due).
        # The whole transaction in one round trip (store.pg_claim).
        with db.pipeline(), db.transaction(immediate=False):
            settled = _settle_all(db, outcomes, now)
            seen = db.execute(send_gate.STATE) if gate else None
            cur = pg_claim.claim(db, {"key": key, "after": after, "due": due, "limit": limit,
                                      "at": at, "owner": owner, "until": until,
                                      "transport": transport})
        window = cur.fetchall()
        active = [r for r in window if r[5] == "active"]
        return Claims(tuple(_delivery(key, r) for r in active), len(window) - len(active),
                      settled, window[-1][0] if window else after,
                      send_gate.state_of(seen.fetchone()) if seen is not None else None)
    with db.transaction():
        settled = _settle_all(db, outcomes, now)
        state = send_gate.state(db) if gate else None
        window = db.all(
            "SELECT d.subscriber_id, d.language, d.attempts, d.variant, d.first_deferred_at, "
            "s.status, s.email, s.name, s.language FROM deliveries d JOIN subscribers s "
            "ON s.id = d.subscriber_id WHERE d.issue = ? AND d.subscriber_id > ? AND "
            # s.id > ? says the same again for PostgreSQL's planner: without it the merge
            # join read the subscribers' index from the first id on every claim (O(N^2)).
            f"s.id > ? AND {_DUE} ORDER BY d.subscriber_id LIMIT ?",
            (key, after, after, due, due, limit))
        active = [r for r in window if r[5] == "active"]
        if active:
            marks = ",".join("?" * len(active))
            # +state: SQLite's documented way to keep a term off an index. Without it the
            # planner read this by deliveries_by_state (state IN, issue =), every row still
            # pending, for 20 ids: O(N) a claim, O(N^2) a run (12 ms a claim at the start of
            # 100,000 rows); the primary key finds the 20 rows, then state is checked.
            db.execute(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                "updated_at = ?, claimed_by = ?, lease_until = ?, transport = CASE WHEN ? = '' "
                "THEN transport ELSE ? END WHERE issue = ? AND +state IN ('pending', 'deferred') "
                f"AND subscriber_id IN ({marks})",
                (at, owner, until, transport, transport, key, *(r[0] for r in active)))
        gone = [r for r in window if r[5] != "active"]
        if gone:
            db.executemany(
                "UPDATE deliveries SET state = 'suppressed', updated_at = ?, last_reply = ? "
                "WHERE issue = ? AND subscriber_id = ? AND state IN ('pending', 'deferred')",
                [(at, f"subscriber is {r[5]}", key, r[0]) for r in gone])
    return Claims(tuple(_delivery(key, r) for r in active), len(gone), settled,
                  window[-1][0] if window else after, state)


def _delivery(key: str, r: Row) -> Delivery:
    return Delivery(key, r[0], r[6], r[7], r[1], r[2] + 1, r[8], r[3],
                    datetime.fromisoformat(r[4]) if r[4] else None)


def settle(db: Db, outcome: Settle, now: datetime) -> str:
    """Record one outcome on its own; returns the state written."""
    return settle_many(db, [outcome], now)[0]


def settle_many(db: Db, outcomes: Sequence[Settle], now: datetime) -> tuple[str, ...]:
    """Record outcomes in one transaction (a worker's last batch); the states written."""
    with db.transaction():
        return _settle_all(db, outcomes, now)


def _settle_all(db: Db, outcomes: Iterable[Settle], now: datetime) -> tuple[str, ...]:
    """One executemany per shape of UPDATE (sent, pending, deferred, the rest; PostgreSQL:
    one UPDATE for all). Only a row still `sending` changes: a row recovered as unknown
    meanwhile stays so."""
    shapes: dict[str, list[tuple[object, ...]]] = {}
    states = []
    if db.engine == "postgresql":  # one statement for them all, however many (pg_claim)
        values = [(s.delivery.issue, s.delivery.subscriber_id, s.state, s.reply[:500],
                   *_columns(s)) for s in outcomes]
        if values:
            pg_claim.settle(db, values, stamp(now))
        return tuple(v[2] for v in values)
    for s in outcomes:
        extra, params = _extra(s)
        shapes.setdefault(extra, []).append((s.state, s.reply[:500], stamp(now), *params,
                                             s.delivery.issue, s.delivery.subscriber_id))
        states.append(s.state)
    for extra, rows in shapes.items():
        db.executemany(f"UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? "
                       f"{extra} WHERE issue = ? AND subscriber_id = ? AND state = 'sending'",
                       rows)
    return tuple(states)


def _extra(s: Settle) -> tuple[str, tuple[object, ...]]:
    """The columns an outcome sets besides its state and reply."""
    if s.state == "sent":
        return ", message_id = ?", (s.message_id,)
    if s.state == "pending":  # nothing reached the server: the attempt does not count
        return ", attempts = attempts - 1", ()
    if s.state == "deferred":
        if s.retry_at is None or s.first_deferred_at is None:
            raise ValueError("a deferral needs retry_at and first_deferred_at (ledger.resolve)")
        return (", next_attempt_at = ?, first_deferred_at = ?",
                (stamp(s.retry_at), stamp(s.first_deferred_at)))
    return "", ()


def _columns(s: Settle) -> tuple[str | None, str | None, str | None]:
    """(message_id, next_attempt_at, first_deferred_at) as _extra sets them (None: kept)."""
    _extra(s)  # the same checks
    if s.state == "deferred" and s.retry_at and s.first_deferred_at:
        return None, stamp(s.retry_at), stamp(s.first_deferred_at)
    return (s.message_id if s.state == "sent" else None), None, None


def sending_owners(db: Db) -> list[str | None]:
    """Who holds the rows now `sending` (None: claimed before owners were recorded)."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'sending'")]


def recover_claims(db: Db, owners: Iterable[str | None], now: datetime) -> int:
    """The `sending` rows of owners that died become `unknown`: the server may have the
    message, so they are never resent without the operator's word."""
    total = 0
    with db.transaction():
        for owner in owners:
            whose = "claimed_by IS NULL" if owner is None else "claimed_by = ?"
            total += db.execute(
                "UPDATE deliveries SET state = 'unknown', updated_at = ?, last_reply = ? "
                f"WHERE state = 'sending' AND {whose}",
                (stamp(now), INTERRUPTED, *([] if owner is None else [owner]))).rowcount
    return total


def renew_leases(db: Db, owner: str, until: datetime) -> int:
    """The owner is alive: its `sending` rows hold until `until`. A row another host has
    recovered as `unknown` meanwhile stays unknown (only `sending` rows are renewed)."""
    with db.transaction():
        return db.execute("UPDATE deliveries SET lease_until = ? WHERE state = 'sending' AND "
                          "claimed_by = ?", (stamp(until), owner)).rowcount


def recover_expired(db: Db, now: datetime) -> int:
    """`sending` rows whose lease ran out (their sender died or lost the database, on any
    host) become `unknown`, as recover_claims's rows do."""
    with db.transaction():
        return db.execute(
            "UPDATE deliveries SET state = 'unknown', updated_at = ?, last_reply = ? "
            "WHERE state = 'sending' AND lease_until IS NOT NULL AND lease_until < ?",
            (stamp(now), INTERRUPTED, stamp(now))).rowcount


def resend_unknown(db: Db, keys: Iterable[str], now: datetime) -> int:
    """The operator's explicit decision (--resend-unknown): unknown rows become pending."""
    total = 0
    with db.transaction():
        for key in keys:
            total += db.execute("UPDATE deliveries SET state = 'pending', updated_at = ? "
                                "WHERE issue = ? AND state = 'unknown'",
                                (stamp(now), key)).rowcount
    return total


def count_due(db: Db, keys: list[str], now: datetime) -> int:
    """Rows of these keys a run at `now` would attempt."""
    if not keys:
        return 0
    marks = ",".join("?" * len(keys))
    return db.one(
        f"SELECT count(*) FROM deliveries WHERE issue IN ({marks}) AND (state = 'pending' OR "
        f"(state = 'deferred' AND next_attempt_at <= ?))", (*keys, stamp(now)))[0]
