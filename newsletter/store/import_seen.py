"""Which rows of each subscriber CSV its last import merged: a digest per row, the subscriber
the row became and the values it gave (tables of the import_seen migration). A re-import of an
edited file looks its rows up here and validates and merges only the new and changed ones
(audience.importing). A row counts as unchanged only while its subscriber still holds the
values that row gave: a reader's own edit, another file, an editor's `subscribers add` since
make it go through the whole import again, warnings included. A row goes with its subscriber
(ON DELETE CASCADE: a forgotten reader leaves nothing here)."""

from __future__ import annotations

from newsletter.store.db import Db


def source_of(db: Db, path: str) -> int | None:
    """The id under which path's rows are remembered, None before its first import."""
    row = db.execute("SELECT id FROM import_sources WHERE path = ?", (path,)).fetchone()
    return int(row[0]) if row else None


def add_lines(db: Db, source: int | None, lines: list[tuple[int, str]],
              force: set[int]) -> set[int]:
    """Stage (line, row digest) of a batch in file order; return the lines among them that
    the last import of source merged and whose subscriber still holds their values, forced
    lines excepted (those go through the whole import)."""
    db.executemany("INSERT INTO import_lines (line, hash) VALUES (?, ?)", lines)
    if source is None or not lines:
        return set()
    first, last = lines[0][0], lines[-1][0]
    db.execute("UPDATE import_lines SET subscriber_id = (SELECT s.id FROM import_seen k "
               "JOIN subscribers s ON s.id = k.subscriber_id WHERE k.source_id = ? AND "
               "k.row_hash = import_lines.hash AND s.name = k.name AND s.language = "
               "k.language AND s.tags = k.tags) WHERE line BETWEEN ? AND ?",
               (source, first, last))
    db.executemany("UPDATE import_lines SET subscriber_id = NULL WHERE line = ?",
                   [(n,) for n in sorted(force) if first <= n <= last])
    return {int(r[0]) for r in db.execute(
        "SELECT line FROM import_lines WHERE line BETWEEN ? AND ? AND subscriber_id IS NOT "
        "NULL", (first, last))}


def clashes(db: Db) -> set[int]:
    """Unchanged lines whose address another line of this import has too: the rule for a
    repeated address (the first line wins, tags of both, a note) needs every line of it, so
    they go through the whole import."""
    found = {int(r[0]) for r in db.execute(
        "SELECT l.line FROM import_lines l JOIN subscribers s ON s.id = l.subscriber_id "
        "JOIN import_rows r ON r.key = lower(CAST(s.email AS TEXT))")}
    # ... and unchanged lines of one subscriber: a row copied within the file (same digest)
    return found | {int(r[0]) for r in db.execute(
        "SELECT line FROM import_lines WHERE subscriber_id IN (SELECT subscriber_id FROM "
        "import_lines WHERE subscriber_id IS NOT NULL GROUP BY subscriber_id "
        "HAVING count(*) > 1)")}


def unchanged(db: Db) -> int:
    return int(db.execute("SELECT count(*) FROM import_lines WHERE subscriber_id IS NOT NULL"
                          ).fetchone()[0])


def remember(db: Db, path: str) -> None:
    """In the import's transaction, after its merge: the file's rows now are its unchanged
    lines and its staged rows that were one line each and were merged (not a forgotten
    reader's); every other row of the last import is gone from the file."""
    db.execute("INSERT INTO import_sources (path) VALUES (?) ON CONFLICT (path) DO NOTHING",
               (path,))
    source = source_of(db, path)
    # indexed once all are in: inserting into an index of random digests row by row was
    # most of a re-import's time (a temporary table's small page cache)
    db.execute("CREATE INDEX IF NOT EXISTS import_lines_hash ON import_lines (hash)")
    db.execute("DELETE FROM import_seen WHERE source_id = ? AND NOT EXISTS (SELECT 1 FROM "
               "import_lines l WHERE l.hash = import_seen.row_hash AND l.subscriber_id IS "
               "NOT NULL)", (source,))
    db.execute("INSERT INTO import_seen (source_id, row_hash, subscriber_id, name, language, "
               "tags) SELECT ?, l.hash, s.id, r.name, r.language, r.tags FROM import_rows r "
               "JOIN import_lines l ON l.line = r.line JOIN subscribers s ON s.email = r.email "
               "WHERE r.single = 1 ON CONFLICT (source_id, row_hash) DO UPDATE SET "
               "subscriber_id = excluded.subscriber_id, name = excluded.name, language = "
               "excluded.language, tags = excluded.tags", (source,))
