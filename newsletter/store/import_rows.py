"""The rows of one CSV import while it streams: a temporary table keyed by the lower-cased
address, so a file of a million rows finds its duplicates without holding them in memory
(a set of a million addresses alone is about 100 MB). The table lives in the connection's
temporary storage (SQLite: a temporary file behind a small page cache) and is dropped after."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from newsletter.model import Subscriber
from newsletter.store.db import Db, Row

_COLUMNS = "line, email, name, language, tags"
_IN_CHUNK = 500  # placeholders per SELECT: well under every engine's limit


def begin(db: Db) -> None:
    """An empty staging table (a crashed run's leftovers, if any, go first)."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS import_rows (line INTEGER PRIMARY KEY, "
               "key TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL, "
               "language TEXT NOT NULL, tags TEXT NOT NULL, single INTEGER NOT NULL)")
    # every row's digest, and the subscriber of each row left as the last import merged it
    # (store.import_seen)
    db.execute("CREATE TEMP TABLE IF NOT EXISTS import_lines (line INTEGER PRIMARY KEY, "
               "hash TEXT NOT NULL, subscriber_id INTEGER)")
    db.execute("DELETE FROM import_rows")
    db.execute("DELETE FROM import_lines")


def end(db: Db) -> None:
    db.execute("DROP TABLE IF EXISTS import_rows")
    db.execute("DROP TABLE IF EXISTS import_lines")


def _staged(row: Row) -> tuple[int, Subscriber]:
    return row["line"], Subscriber(row["email"], row["name"], row["language"],
                                   tuple(t for t in row["tags"].split(";") if t))


def find(db: Db, keys: Iterable[str]) -> dict[str, tuple[int, Subscriber]]:
    """key -> (first line, subscriber as merged so far) for the keys already staged."""
    wanted = list(keys)
    found: dict[str, tuple[int, Subscriber]] = {}
    for i in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[i:i + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in db.execute(f"SELECT {_COLUMNS} FROM import_rows WHERE key IN ({marks})",
                              chunk):
            line, sub = _staged(row)
            found[sub.email.lower()] = (line, sub)
    return found


def stage(db: Db, new: Iterable[tuple[int, Subscriber]],
          changed: Iterable[tuple[int, Subscriber]]) -> None:
    """Add new addresses; rewrite staged ones a later row merged into (no longer one line's
    row: store.import_seen does not remember it)."""
    db.executemany("INSERT INTO import_rows (line, key, email, name, language, tags, single) "
                   "VALUES (?, ?, ?, ?, ?, ?, 1)",
                   [(line, s.email.lower(), s.email, s.name, s.language, ";".join(s.tags))
                    for line, s in new])
    db.executemany("UPDATE import_rows SET name = ?, tags = ?, single = 0 WHERE line = ?",
                   [(s.name, ";".join(s.tags), line) for line, s in changed])


def leave_out(db: Db, lines: Iterable[int]) -> None:
    """Staged rows not to remember as one line merged (an address repeated within one batch,
    a forgotten reader the merge left out)."""
    db.executemany("UPDATE import_rows SET single = 0 WHERE line = ?", [(n,) for n in lines])


def count(db: Db) -> int:
    return int(db.execute("SELECT count(*) FROM import_rows").fetchone()[0])


def pages(db: Db, size: int) -> Iterator[list[tuple[int, Subscriber]]]:
    """The staged rows in file order (of each address's first line), size at a time."""
    last = 0
    while True:
        rows = db.execute(f"SELECT {_COLUMNS} FROM import_rows WHERE line > ? ORDER BY line "
                          "LIMIT ?", (last, size)).fetchall()
        if not rows:
            return
        page = [_staged(row) for row in rows]
        yield page
        last = page[-1][0]
