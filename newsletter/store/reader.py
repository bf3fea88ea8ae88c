"""The reader's own choices: which fields of a subscriber the reader set themselves, and the
import that keeps them.

A reader who changes their name or language on the preferences page (or gives them on the
subscribe form they confirm) owns that field from then on: a later CSV import whose value
differs does not apply it and reports it instead (KeptChoice). The editor applies the CSV
anyway with `subscribers import --override reader`, which hands the field back to the CSV.
Status is never an import's to change, override or not: whoever left stays left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.model import Subscriber
from newsletter.store.db import Db, Row
from newsletter.store.stamps import now_iso

READER_FIELDS = ("name", "language")  # the reader_fields CHECK names the same two


@dataclass(frozen=True)
class KeptChoice:
    """A CSV value not applied because the reader set that field themselves."""

    email: str
    field: str  # one of READER_FIELDS
    kept: str  # the reader's value, still in the database
    offered: str  # what the CSV says
    changed_at: str  # when the reader set it (ISO 8601, UTC)

    def describe(self, where: str, *, offered_by: str = "the CSV",
                 how: str = "`subscribers import --override reader FILE` applies it") -> str:
        """One warning line; where is "file:line"."""
        return (f"{where}: {self.email}: {self.field} {self.kept!r} kept (the reader's own "
                f"choice, {self.changed_at[:10]}); {offered_by} says {self.offered!r} ({how})")


@dataclass(frozen=True)
class MergeResult:
    added: int
    updated: int
    kept: tuple[KeptChoice, ...] = ()  # reader-set values the CSV would have changed
    overridden: int = 0  # reader-set fields the CSV replaced (--override reader)


def merge_subscribers(conn: Db, subs: Iterable[Subscriber], *,
                      override_reader: bool = False) -> MergeResult:
    """Insert new addresses; refresh name, language and tags of known ones, except a field
    the reader set themselves that the CSV would change (kept, and reported), unless
    override_reader. Never touches status: an unsubscribed, bounced or complained address
    stays so. One transaction."""
    with conn.transaction():
        return merge_rows(conn, subs, reader_owned(conn), override_reader=override_reader,
                          stamp=now_iso())


def reader_owned(conn: Db) -> dict[int, dict[str, str]]:
    """subscriber id -> {field: when the reader set it}. The readers' own choices are few
    next to the list: one read per import, not one per row."""
    owned: dict[int, dict[str, str]] = {}
    for sid, field, changed_at in conn.execute(
            "SELECT subscriber_id, field, changed_at FROM reader_fields"):
        owned.setdefault(sid, {})[field] = changed_at
    return owned


def merge_rows(conn: Db, subs: Iterable[Subscriber], owned: dict[int, dict[str, str]], *,
               override_reader: bool, stamp: str) -> MergeResult:
    """merge_subscribers in the caller's transaction (a streamed import merges a batch at a
    time, all in one transaction), with the reader_owned map read once."""
    added = updated = overridden = 0
    kept: list[KeptChoice] = []
    subs = list(subs)
    known, done = _rows_of(conn, [sub.email for sub in subs]), set()
    new: list[tuple[str, ...]] = []  # inserted together, in order (ids as one by one)
    for sub in subs:
        key = _fold(sub.email)
        if key in done:  # an address twice in one call: as the first left it
            _insert(conn, new)
            row = conn.execute("SELECT id, email, name, language, tags FROM subscribers "
                               "WHERE email = ?", (sub.email,)).fetchone()
        else:
            row = known.get(key)
        done.add(key)
        tags = ";".join(sub.tags)
        if row is None:
            new.append((sub.email, sub.name, sub.language, tags, stamp, stamp))
            added += 1
            continue
        wanted = {"name": sub.name, "language": sub.language}
        mine = owned.get(row["id"], {})
        for field in READER_FIELDS:  # a fixed order: the warnings read the same each time
            if field not in mine or wanted[field] == row[field]:
                continue
            changed_at = mine[field]
            if override_reader:
                conn.execute("DELETE FROM reader_fields WHERE subscriber_id = ? AND "
                             "field = ?", (row["id"], field))
                overridden += 1
            else:
                # row["email"]: the address as stored; the CSV may spell it in another case
                kept.append(KeptChoice(row["email"], field, row[field], wanted[field],
                                       changed_at))
                wanted[field] = row[field]
        if (row["name"], row["language"], row["tags"]) != (wanted["name"],
                                                           wanted["language"], tags):
            conn.execute("UPDATE subscribers SET name = ?, language = ?, tags = ?, "
                         "updated_at = ? WHERE id = ?",
                         (wanted["name"], wanted["language"], tags, stamp, row["id"]))
            updated += 1
    _insert(conn, new)
    return MergeResult(added, updated, tuple(kept), overridden)


def _insert(conn: Db, new: list[tuple[str, ...]]) -> None:
    """New addresses, active; the list is emptied."""
    conn.executemany("INSERT INTO subscribers (email, name, language, tags, status, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?)", new)
    new.clear()


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(email: str) -> str:
    """An address as subscribers.email compares it: ASCII letters without case (SQLite's
    NOCASE, PostgreSQL's citext under "C")."""
    return email.translate(_ASCII_LOWER)


def _rows_of(conn: Db, emails: list[str]) -> dict[str, Row]:
    """The subscriber rows of these addresses by _fold, one SELECT per 500 (a merge of 5,000
    rows asked one statement a row before)."""
    rows: dict[str, Row] = {}
    for i in range(0, len(emails), 500):
        chunk = emails[i:i + 500]
        for row in conn.execute("SELECT id, email, name, language, tags FROM subscribers "
                                f"WHERE email IN ({', '.join('?' * len(chunk))})", chunk):
            rows[_fold(row["email"])] = row
    return rows


def save_reader_profile(conn: Db, email: str, name: str,
                        language: str) -> tuple[str, ...]:
    """The reader's own edit (preferences page): store name and language; each field whose
    value changed becomes the reader's. Returns the fields that changed. A field saved
    unchanged stays the CSV's: the reader only confirmed what the editor had."""
    stamp = now_iso()
    with conn.transaction():
        row = conn.execute("SELECT id, name, language FROM subscribers WHERE email = ?",
                           (email,)).fetchone()
        if row is None:
            return ()
        changed = tuple(f for f, v in (("name", name), ("language", language)) if row[f] != v)
        conn.execute("UPDATE subscribers SET name = ?, language = ?, updated_at = ? "
                     "WHERE id = ?", (name, language, stamp, row["id"]))
        mark_reader_set(conn, row["id"], changed, stamp)
    return changed


def mark_reader_set(conn: Db, subscriber_id: int, fields: Iterable[str],
                    stamp: str) -> None:
    """Record that the reader set these fields now. Runs in the caller's transaction."""
    conn.executemany(
        "INSERT INTO reader_fields (subscriber_id, field, changed_at) VALUES (?, ?, ?) "
        "ON CONFLICT (subscriber_id, field) DO UPDATE SET changed_at = excluded.changed_at",
        [(subscriber_id, field, stamp) for field in fields])


def reader_set_fields(conn: Db, email: str) -> dict[str, str]:
    """field -> when the reader set it, for one address."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT f.field, f.changed_at FROM reader_fields f JOIN subscribers s "
        "ON s.id = f.subscriber_id WHERE s.email = ? ORDER BY f.field", (email,))}


def choices_kept_from(conn: Db, sub: Subscriber) -> tuple[KeptChoice, ...]:
    """What merge_subscribers would keep of sub's name and language (read only): an
    editor's `subscribers add` of a known address asks before it writes."""
    row = conn.execute("SELECT id, email, name, language FROM subscribers WHERE email = ?",
                       (sub.email,)).fetchone()
    if row is None:
        return ()
    wanted = {"name": sub.name, "language": sub.language}
    mine = dict(conn.execute("SELECT field, changed_at FROM reader_fields "
                             "WHERE subscriber_id = ?", (row["id"],)).fetchall())
    return tuple(KeptChoice(row["email"], field, row[field], wanted[field], mine[field])
                 for field in READER_FIELDS if field in mine and wanted[field] != row[field])
