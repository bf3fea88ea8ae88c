"""The SQL of forgetting a reader: every row naming them goes or loses the address, their
delivery rows become counts, and only a keyed hash is kept (tables of the consent migration
in store/migrations_later.py; audience/forget.py decides what to erase)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.store.db import Db
from newsletter.store.ledger import OPEN_STATES

FORGOTTEN_MARK = "[forgotten]"


@dataclass(frozen=True)
class Erased:
    """What one forget removed or turned into counts."""

    subscribers: int = 0
    deliveries: int = 0  # kept as counts in forgotten_deliveries
    bounce_events: int = 0  # kept, without the address
    other_rows: int = 0  # subscribe requests, queued mail, history
    scrubbed: int = 0  # values elsewhere that named the address, now FORGOTTEN_MARK


def spellings(conn: Db, domains: Iterable[str]) -> set[str]:
    """Every address the database holds at these domains (the caller keeps those of one
    mailbox): subscribers, requests, queued mail, bounces and history."""
    found: set[str] = set()
    for domain in domains:
        pattern = "%@" + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for table in ("subscribers", "optin_requests", "mail_queue", "bounce_events",
                      "consent_events"):
            found.update(r[0] for r in conn.execute(
                f"SELECT DISTINCT email FROM {table} WHERE email LIKE ? ESCAPE '\\'",
                (pattern,)))
    return found


def erase(conn: Db, emails: Iterable[str], mailbox: str, key: str,
          on_date: str) -> Erased:
    """Forget one reader (every spelling in emails) in one transaction: delivery rows become
    counts, bounce events lose the address, every other row naming it goes, any text value
    anywhere that still names it is scrubbed, and only the keyed hash is kept.

    secure_delete makes SQLite overwrite the freed cells with zeros, so the address does not
    linger in free pages of the file; the WAL is checkpointed and truncated afterwards."""
    lowered = sorted({e.lower() for e in emails})
    marks = ",".join("?" * len(lowered))
    conn.execute("PRAGMA secure_delete = ON")
    with conn.transaction():
        ids = [r[0] for r in conn.execute(
            f"SELECT id FROM subscribers WHERE lower(email) IN ({marks})", lowered)]
        deliveries = _deliveries_to_counts(conn, ids)
        id_marks = ",".join("?" * len(ids))
        for table, column in _references_to_subscribers(conn):
            conn.execute(f"DELETE FROM {table} WHERE {column} IN ({id_marks})", ids)
        gone = conn.execute(f"DELETE FROM subscribers WHERE id IN ({id_marks})", ids).rowcount
        other = conn.execute(f"DELETE FROM optin_requests WHERE lower(email) IN ({marks}) "
                             "OR mailbox = ?", (*lowered, mailbox)).rowcount
        other += conn.execute(f"DELETE FROM mail_queue WHERE lower(email) IN ({marks})",
                              lowered).rowcount
        other += conn.execute(f"DELETE FROM consent_events WHERE lower(email) IN ({marks})",
                              lowered).rowcount
        bounces = conn.execute(f"UPDATE bounce_events SET email = '' WHERE lower(email) IN "
                               f"({marks})", lowered).rowcount
        conn.execute("DELETE FROM welcomed WHERE key_hash = ?", (key,))
        conn.execute("INSERT OR IGNORE INTO forgotten (key_hash, forgotten_on) VALUES (?, ?)",
                     (key, on_date))
        scrubbed = _scrub_everywhere(conn, [*lowered, mailbox])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Erased(gone, deliveries, bounces, other, scrubbed)


def _deliveries_to_counts(conn: Db, ids: list[int]) -> int:
    """The ledger keeps how many, by issue, edition and state, not to whom. A row still open
    is counted as suppressed: it will never be sent."""
    total = 0
    for sid in ids:
        rows = conn.execute("SELECT issue, language, state, count(*) FROM deliveries WHERE "
                            "subscriber_id = ? GROUP BY issue, language, state", (sid,)).fetchall()
        for issue, language, state, n in rows:
            conn.execute(
                "INSERT INTO forgotten_deliveries (issue, language, state, count) VALUES "
                "(?, ?, ?, ?) ON CONFLICT (issue, language, state) DO UPDATE SET "
                "count = count + excluded.count",
                (issue, language, "suppressed" if state in OPEN_STATES else state, n))
            total += n
    return total


def _tables(conn: Db) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def _references_to_subscribers(conn: Db) -> list[tuple[str, str]]:
    """(table, column) of every foreign key onto subscribers, deliveries first (already
    counted): whatever table a later migration adds, its rows about the reader go too."""
    found = [(t, fk[3]) for t in _tables(conn) if t != "subscribers"
             for fk in conn.execute(f"PRAGMA foreign_key_list({t})") if fk[2] == "subscribers"]
    return sorted(found, key=lambda tc: tc[0] != "deliveries")


def _scrub_everywhere(conn: Db, needles: list[str]) -> int:
    """Replace each needle (case-insensitively) in every text value of every table: a
    processed report's outcome line, a queue reply, a table added later that names the
    address. Returns how many values changed."""
    # Whole addresses only: forgetting ana@example.org leaves diana@example.org alone.
    pattern = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])(?:" + "|".join(
        re.escape(n) for n in needles if n) + r")(?![\w-]|\.\w)", re.IGNORECASE)
    changed = 0
    for table in _tables(conn):
        for column in [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]:
            where = " OR ".join(f"instr(lower(\"{column}\"), ?) > 0" for _ in needles)
            rows = conn.execute(
                f"SELECT rowid, \"{column}\" FROM {table} WHERE typeof(\"{column}\") = 'text' "
                f"AND ({where})", needles).fetchall()
            for rowid, value in rows:
                scrubbed = pattern.sub(FORGOTTEN_MARK, value)
                if scrubbed != value:
                    conn.execute(f"UPDATE {table} SET \"{column}\" = ? WHERE rowid = ?",
                                 (scrubbed, rowid))
                    changed += 1
    return changed
