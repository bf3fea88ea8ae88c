"""The outgoing-mail queue of `newsletter serve` (confirmations, welcomes, data links):
claimed in batches by a worker, each claim committed before the mail is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter.store.db import Db
from newsletter.store.stamps import stamp as iso


@dataclass(frozen=True)
class QueuedMail:
    id: int
    kind: str
    email: str
    language: str
    ref: str  # for kind "confirm": the opt-in request's public id
    attempts: int
    first_deferred_at: datetime | None


def claim_due_mail(db: Db, owner: str, now: datetime, limit: int,
                   lease: timedelta) -> list[QueuedMail]:
    """Claim the next `limit` due rows for `owner`, committed before any is sent.

    In the same transaction: a claim whose lease ran out becomes `unknown` (the relay may
    have the message: never resent automatically), and mail to an address that bounced or
    complained since it was queued is `suppressed`. One UPDATE ... WHERE id IN (SELECT ...
    LIMIT n) claims the rows. SQLite runs it under its one write lock (BEGIN IMMEDIATE); on
    PostgreSQL, where several serve hosts drain one queue, each subquery takes its rows FOR
    UPDATE SKIP LOCKED instead, so a host skips the rows another holds rather than wait for
    them, and READ COMMITTED re-checks the state of a row committed meanwhile (claimed by
    another host: no longer due), so no row is claimed twice.
    """
    stamp = iso(now)
    row_locks = db.engine == "postgresql"
    skip = " FOR UPDATE SKIP LOCKED" if row_locks else ""
    with db.transaction(immediate=not row_locks):
        db.execute(
            "UPDATE mail_queue SET state = 'unknown', updated_at = ?, last_reply = 'claim "
            "expired (crash or kill during delivery); the message may have been sent' "
            "WHERE id IN (SELECT id FROM mail_queue WHERE state = 'sending' AND claimed_at < ?"
            f"{skip})", (stamp, iso(now - lease)))
        db.execute(
            "UPDATE mail_queue SET state = 'suppressed', updated_at = ?, last_reply = "
            "'address is ' || (SELECT status FROM subscribers s WHERE s.email = "
            "mail_queue.email) WHERE id IN (SELECT id FROM mail_queue q WHERE q.state IN "
            "('pending', 'deferred') AND EXISTS (SELECT 1 FROM subscribers s WHERE s.email = "
            "q.email AND s.status IN ('bounced', 'complained'))"
            f"{' FOR UPDATE OF q SKIP LOCKED' if row_locks else ''})", (stamp,))
        rows = db.execute(
            "UPDATE mail_queue SET state = 'sending', attempts = attempts + 1, claimed_by = ?, "
            "claimed_at = ?, updated_at = ? WHERE id IN (SELECT id FROM mail_queue WHERE "
            "state IN ('pending', 'deferred') AND next_attempt_at <= ? "
            f"ORDER BY next_attempt_at, id LIMIT ?{skip}) "
            "RETURNING id, kind, email, language, ref, attempts, first_deferred_at",
            (owner, stamp, stamp, stamp, limit)).fetchall()
    return sorted((QueuedMail(r[0], r[1], r[2], r[3], r[4], r[5],
                              datetime.fromisoformat(r[6]) if r[6] else None) for r in rows),
                  key=lambda m: m.id)


def settle_mail(db: Db, mail_id: int, owner: str, state: str, reply: str,
                now: datetime, *, retry_at: datetime | None = None,
                message_id: str = "") -> bool:
    """Record a claimed row's outcome; False if the claim was no longer ours (lease ran out)."""
    retry = iso(retry_at) if retry_at else None
    with db.transaction():
        return db.execute(
            "UPDATE mail_queue SET state = ?, last_reply = ?, updated_at = ?, "
            "next_attempt_at = coalesce(?, next_attempt_at), first_deferred_at = "
            "CASE WHEN ? = 'deferred' THEN coalesce(first_deferred_at, ?) "
            "ELSE first_deferred_at END, message_id = coalesce(nullif(?, ''), message_id) "
            "WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (state, reply[:500], iso(now), retry, state, iso(now), message_id, mail_id,
             owner)).rowcount == 1


def mail_queue_counts(db: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute(
        "SELECT state, count(*) FROM mail_queue GROUP BY state ORDER BY state")}
