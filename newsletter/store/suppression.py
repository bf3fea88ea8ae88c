"""One recipient's traces in the caller's transaction: a bounce event, the soft bounces
counted toward the limit, and the subscriber's new status."""

from __future__ import annotations

from newsletter.store.db import Db


def record_event(db: Db, email: str, kind: str, key: str, at: str,
                 reason: str = "", domain: str = "") -> None:
    db.execute("INSERT INTO bounce_events (email, kind, report_key, at, reason, domain) "
               "VALUES (?, ?, ?, ?, ?, ?)", (email, kind, key, at, reason, domain))


def recent_soft(db: Db, address: str, after: str, until: str) -> int:
    """Soft bounces of address in (after, until], delay warnings left out."""
    return int(db.execute(
        "SELECT count(*) FROM bounce_events WHERE email = ? AND kind = 'soft' "
        "AND reason != 'delayed' AND at > ? AND at <= ?", (address, after, until)).fetchone()[0])


def change_status(db: Db, email: str, status: str, reason: str, at: str) -> None:
    """The subscriber's status after a report, in the caller's transaction (set_status in
    store.subscribers opens its own)."""
    db.execute("UPDATE subscribers SET status = ?, reason = ?, updated_at = ? WHERE email = ?",
               (status, reason, at, email))
