"""The SQL of forgetting a reader: every row naming them goes or loses the address, their
delivery rows become counts, and only a keyed hash is kept (tables of the consent migration
in store/migrations_later.py; audience/forget.py decides what to erase)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.store import catalog
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

    On SQLite the freed cells are overwritten with zeros, so the address does not linger in
    free pages of the file, and the WAL is truncated afterwards (catalog.wipe_freed_space)."""
    lowered = sorted({e.lower() for e in emails})
    marks = ",".join("?" * len(lowered))
    catalog.wipe_freed_space(conn)
    with conn.transaction():
        ids = [r[0] for r in conn.execute(
            f"SELECT id FROM subscribers WHERE lower(email) IN ({marks})", lowered)]
        deliveries = _deliveries_to_counts(conn, ids)
        gone = _delete_subscribers(conn, ids)
        other = conn.execute(f"DELETE FROM optin_requests WHERE lower(email) IN ({marks}) "
                             "OR mailbox = ?", (*lowered, mailbox)).rowcount
        other += conn.execute(f"DELETE FROM mail_queue WHERE lower(email) IN ({marks})",
                              lowered).rowcount
        other += conn.execute(f"DELETE FROM consent_events WHERE lower(email) IN ({marks})",
                              lowered).rowcount
        bounces = conn.execute(f"UPDATE bounce_events SET email = '' WHERE lower(email) IN "
                               f"({marks})", lowered).rowcount
        conn.execute("DELETE FROM welcomed WHERE key_hash = ?", (key,))
        conn.execute("INSERT INTO forgotten (key_hash, forgotten_on) VALUES (?, ?) "
                     "ON CONFLICT DO NOTHING", (key, on_date))
        scrubbed = _scrub_everywhere(conn, [*lowered, mailbox])
    catalog.truncate_log(conn)
    return Erased(gone, deliveries, bounces, other, scrubbed)


def _delete_subscribers(conn: Db, ids: list[int]) -> int:
    """The subscribers rows and every row that refers to them; none is no statement (an
    empty `IN ()` is SQLite's alone)."""
    if not ids:
        return 0
    id_marks = ",".join("?" * len(ids))
    for table, column in _references_to_subscribers(conn):
        conn.execute(f"DELETE FROM {table} WHERE {column} IN ({id_marks})", ids)
    return conn.execute(f"DELETE FROM subscribers WHERE id IN ({id_marks})", ids).rowcount


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
                "count = forgotten_deliveries.count + excluded.count",
                (issue, language, "suppressed" if state in OPEN_STATES else state, n))
            total += n
    return total


def _references_to_subscribers(conn: Db) -> list[tuple[str, str]]:
    """(table, column) of every foreign key onto subscribers, deliveries first (already
    counted): whatever table a later migration adds, its rows about the reader go too."""
    found = catalog.references_to(conn, "subscribers")
    return sorted(found, key=lambda tc: tc[0] != "deliveries")


def _scrub_everywhere(conn: Db, needles: list[str]) -> int:
    """Replace each needle (case-insensitively) in every text value of every table: a
    processed report's outcome line, a queue reply, a table added later that names the
    address. Returns how many values changed."""
    # Whole addresses only: forgetting ana@example.org leaves diana@example.org alone.
    pattern = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])(?:" + "|".join(
        re.escape(n) for n in needles if n) + r")(?![\w-]|\.\w)", re.IGNORECASE)
    likes = ["%" + n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
             for n in needles]
    key, changed = catalog.row_key(conn), 0
    for table in catalog.tables(conn):
        for name in catalog.text_columns(conn, table):
            column = f'"{name}"'
            where = " OR ".join(f"lower({column}) LIKE ? ESCAPE '\\'" for _ in likes)
            rows = conn.execute(
                f"SELECT {key}, {column} FROM {table} WHERE {catalog.text_test(conn, column)} "
                f"AND ({where})", likes).fetchall()
            for row_id, value in rows:
                scrubbed = pattern.sub(FORGOTTEN_MARK, value)
                if scrubbed != value:
                    conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                                 (scrubbed, row_id))
                    changed += 1
    return changed
