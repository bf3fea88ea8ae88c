"""The list: subscriber rows in and out as Subscriber, status changes, counts, and which
version of each subscriber CSV was imported last."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from newsletter.model import Subscriber
from newsletter.store.db import Db, Row
from newsletter.store.reader import merge_subscribers, save_reader_profile
from newsletter.store.stamps import now_iso

_SUBSCRIBER_COLUMNS = "id, email, name, language, tags, status, reason"


def _subscriber(row: Row) -> Subscriber:
    return Subscriber(email=row["email"], name=row["name"], language=row["language"],
                      tags=tuple(t for t in row["tags"].split(";") if t), status=row["status"],
                      reason=row["reason"], id=row["id"])


def upsert_subscribers(db: Db, subs: Iterable[Subscriber]) -> tuple[int, int]:
    """Insert new addresses, refresh name/language/tags of known ones; never touch status.

    Returns (added, updated). Someone who unsubscribed, bounced or complained stays so, and
    a name or language the reader set themselves stays theirs (store_reader.merge_subscribers,
    which also says which values it kept).
    """
    merged = merge_subscribers(db, subs)
    return merged.added, merged.updated


def add_subscriber(db: Db, sub: Subscriber) -> str:
    """`subscribers add`: a new address becomes active; a known active one is left alone.

    Returns the status the address has afterwards. An unsubscribed address is not
    re-activated here: that takes the subscriber's own confirmation (double opt-in).
    """
    upsert_subscribers(db, [sub])
    return get_subscriber(db, sub.email).status  # type: ignore[union-attr]


def get_subscriber(db: Db, email: str) -> Subscriber | None:
    row = db.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?",
                     (email,)).fetchone()
    return _subscriber(row) if row else None


def set_status(db: Db, email: str, status: str, reason: str = "") -> bool:
    """Change a subscriber's status (unsubscribe, bounce, complaint); True if the row exists."""
    with db.transaction():
        cur = db.execute("UPDATE subscribers SET status = ?, reason = ?, updated_at = ? "
                         "WHERE email = ?", (status, reason, now_iso(), email))
    return cur.rowcount > 0


def iter_subscribers(db: Db, status: str | None = None,
                     page: int = 1000) -> Iterator[Subscriber]:
    """Stream subscribers in id order, a page at a time: memory stays flat in list size."""
    last = 0
    where = "AND status = ?" if status else ""
    while True:
        params: tuple = (last, status, page) if status else (last, page)
        rows = db.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id > ? "
                          f"{where} ORDER BY id LIMIT ?", params).fetchall()
        if not rows:
            return
        for row in rows:
            yield _subscriber(row)
        last = rows[-1]["id"]


def subscriber_counts(db: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute(
        "SELECT status, count(*) FROM subscribers GROUP BY status ORDER BY status")}


def update_profile(db: Db, email: str, name: str, language: str) -> None:
    """The reader's own edit: the fields it changes are the reader's from now on (a later
    CSV import keeps them: store_reader)."""
    save_reader_profile(db, email, name, language)


def imported_digest(db: Db, path: str) -> str:
    row = db.execute("SELECT sha256 FROM imported_files WHERE path = ?", (path,)).fetchone()
    return row[0] if row else ""


def record_import(db: Db, path: str, digest: str) -> None:
    db.execute("INSERT INTO imported_files (path, sha256, imported_at) VALUES (?, ?, ?) "
               "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
               "imported_at = excluded.imported_at", (path, digest, now_iso()))


def subscriber_languages(db: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute(
        "SELECT language, count(*) FROM subscribers WHERE status = 'active' GROUP BY language")}


def get_subscriber_by_id(db: Db, subscriber_id: int) -> Subscriber | None:
    row = db.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?",
                     (subscriber_id,)).fetchone()
    return _subscriber(row) if row else None
