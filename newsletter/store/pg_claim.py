"""The claim and the settle on PostgreSQL, one statement each (store.claims uses them there):
the due
window is read FOR UPDATE OF d SKIP LOCKED and its rows are marked `sending` (active readers)
or `suppressed` (the others) by the same statement, so that a batch's whole transaction
(BEGIN, the previous batch's outcomes, the claim, COMMIT) goes to the server in one pipeline:
one round trip a batch instead of one a statement. In a sender's threads each round trip
also waits for the interpreter lock (up to its 5 ms switch interval while another thread
builds messages), so the round trips, not the server's work, were most of a claim's time.

Same rows and same guarantees as the two statements SQLite runs: the data-modifying parts of
a WITH see the rows `win` locked, each row is changed by one of them (active or not), and
`state IN ('pending', 'deferred')` is checked again on the locked version. The settle is
one UPDATE over the batch's outcomes as arrays: the executemany it replaces ran one
statement per row (the server's and psycopg's work for each), for the same columns.
"""

from __future__ import annotations

from typing import Any

from newsletter.store.db import Cursor, Db

# _DUE of store.claims, with named parameters.
_DUE = ("(d.state = 'pending' OR (d.state = 'deferred' AND d.next_attempt_at <= :due "
        "AND d.updated_at < :due))")

CLAIM = (
    "WITH win AS (SELECT d.subscriber_id, d.language, d.attempts, d.variant, "
    "d.first_deferred_at, s.status, s.email, s.name, s.language AS reader_language "
    "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
    # s.id > :after: see store.claims (PostgreSQL's merge join read the whole index without).
    f"WHERE d.issue = :key AND d.subscriber_id > :after AND s.id > :after AND {_DUE} "
    "ORDER BY d.subscriber_id LIMIT :limit FOR UPDATE OF d SKIP LOCKED), "
    "sending AS (UPDATE deliveries d SET state = 'sending', attempts = d.attempts + 1, "
    "updated_at = :at, claimed_by = :owner, lease_until = :until, transport = CASE WHEN "
    ":transport = '' THEN d.transport ELSE :transport END FROM win WHERE d.issue = :key AND "
    "d.subscriber_id = win.subscriber_id AND win.status = 'active' AND "
    "d.state IN ('pending', 'deferred') RETURNING d.subscriber_id), "
    "gone AS (UPDATE deliveries d SET state = 'suppressed', updated_at = :at, "
    "last_reply = 'subscriber is ' || win.status FROM win WHERE d.issue = :key AND "
    "d.subscriber_id = win.subscriber_id AND win.status <> 'active' AND "
    "d.state IN ('pending', 'deferred') RETURNING d.subscriber_id) "
    "SELECT subscriber_id, language, attempts, variant, first_deferred_at, status, email, "
    "name, reader_language FROM win ORDER BY subscriber_id")


def claim(db: Db, params: dict[str, Any]) -> Cursor:
    """Send the claim (key, after, due, limit, at, owner, until, transport); its rows are
    read from the cursor once the pipeline it is in has ended."""
    return db.execute(CLAIM, params)


# The columns store.claims._extra sets per state, as one statement: a NULL in v keeps the
# column (only a sent row has a message_id, only a deferred one its retry times).
SETTLE = (
    "UPDATE deliveries d SET state = v.state, last_reply = v.reply, updated_at = :at, "
    "message_id = CASE WHEN v.state = 'sent' THEN v.message_id ELSE d.message_id END, "
    "attempts = CASE WHEN v.state = 'pending' THEN d.attempts - 1 ELSE d.attempts END, "
    "next_attempt_at = CASE WHEN v.state = 'deferred' THEN v.retry_at "
    "ELSE d.next_attempt_at END, first_deferred_at = CASE WHEN v.state = 'deferred' "
    "THEN v.first_deferred ELSE d.first_deferred_at END "
    "FROM unnest(CAST(:issue AS text[]), CAST(:sid AS bigint[]), CAST(:state AS text[]), "
    "CAST(:reply AS text[]), CAST(:mid AS text[]), CAST(:retry AS text[]), "
    "CAST(:first AS text[])) AS v(issue, subscriber_id, state, reply, message_id, retry_at, "
    "first_deferred) WHERE d.issue = v.issue AND d.subscriber_id = v.subscriber_id "
    "AND d.state = 'sending'")

SettleRow = tuple[str, int, str, str, str | None, str | None, str | None]
_ARRAYS = ("issue", "sid", "state", "reply", "mid", "retry", "first")


def settle(db: Db, rows: list[SettleRow], at: str) -> None:
    """Outcomes as (issue, subscriber id, state, reply, message_id, next_attempt_at,
    first_deferred_at): one statement, whatever their states."""
    columns = [list(c) for c in zip(*rows, strict=True)]
    db.execute(SETTLE, {"at": at, **dict(zip(_ARRAYS, columns, strict=True))})
