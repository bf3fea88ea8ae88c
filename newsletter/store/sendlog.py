"""Ledger queries for the send's safety rails: where an issue went and when (`status`), and
who a run would mail now (the confirmation before `send` on a terminal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from newsletter.store.db import Db


@dataclass(frozen=True)
class TransportUse:
    """The rows of one ledger key that one transport delivered (state sent)."""

    transport: str  # '' for rows sent before the ledger recorded it
    sent: int
    by_language: tuple[tuple[str, int], ...]
    first_at: datetime
    last_at: datetime


def transport_uses(conn: Db, issue: str) -> list[TransportUse]:
    """Per transport: the sent rows, by edition language, with the first and last send time
    (updated_at of a sent row is when the server's reply was recorded)."""
    rows = conn.execute(
        "SELECT transport, language, count(*), min(updated_at), max(updated_at) FROM deliveries "
        "WHERE issue = ? AND state = 'sent' GROUP BY transport, language "
        "ORDER BY transport, language", (issue,)).fetchall()
    uses: dict[str, list[tuple[str, int, str, str]]] = {}
    for transport, language, n, first, last in rows:
        uses.setdefault(transport, []).append((language, n, first, last))
    return [TransportUse(transport, sum(r[1] for r in parts),
                         tuple((r[0], r[1]) for r in parts),
                         datetime.fromisoformat(min(r[2] for r in parts)),
                         datetime.fromisoformat(max(r[3] for r in parts)))
            for transport, parts in uses.items()]


def due_by_language(conn: Db, issue: str, now: datetime) -> dict[str, int]:
    """Rows of a started issue that a run at `now` would attempt, by edition language."""
    stamp = now.astimezone(UTC).isoformat(timespec="microseconds")
    return {r[0]: r[1] for r in conn.execute(
        "SELECT language, count(*) FROM deliveries WHERE issue = ? AND (state = 'pending' OR "
        "(state = 'deferred' AND next_attempt_at <= ?)) GROUP BY language ORDER BY language",
        (issue, stamp))}
