"""The SQL of the data link: queue the 'manage' mail, at most one per address an hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from newsletter.store.db import Db
from newsletter.store.stamps import stamp as _stamp

PER_HOUR = 1  # data links mailed to one address in an hour: a stranger cannot flood the inbox


def queue_manage_mail(conn: Db, email: str, language: str,
                      now: datetime) -> bool:
    """Queue the data-link mail to email unless one was queued within the hour; True if
    queued. The check and the insert share one transaction, so two racing POSTs queue one.
    The token is made when the mail is built (its 24 hours start then), not stored here."""
    stamp = _stamp(now)
    with conn.transaction():
        recent = conn.execute(
            "SELECT count(*) FROM mail_queue WHERE kind = 'manage' AND lower(email) = lower(?) "
            "AND created_at > ?", (email, _stamp(now - timedelta(hours=1)))).fetchone()[0]
        if recent >= PER_HOUR:
            return False
        conn.execute(
            "INSERT INTO mail_queue (kind, email, language, ref, state, next_attempt_at, "
            "created_at, updated_at) VALUES ('manage', ?, ?, '', 'pending', ?, ?, ?)",
            (email, language, stamp, stamp, stamp))
        return True
