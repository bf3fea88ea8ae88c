"""store/import_seen on each engine: a file's remembered rows are its merged one-line rows,
an unchanged row is found only while its subscriber still holds its values, a row removed
from the file is forgotten with the next import, and rows go with their subscriber."""

from __future__ import annotations

from pathlib import Path

from newsletter.model import Subscriber
from newsletter.store import import_rows, import_seen
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.db import Db

PATH = "/lists/a.csv"


def one_import(db: Db, rows: list[tuple[int, str, Subscriber]]) -> set[int]:
    """Stage and remember rows (line, digest, subscriber) as an import does; the lines found
    unchanged."""
    import_rows.begin(db)
    try:
        known = import_seen.add_lines(db, import_seen.source_of(db, PATH),
                                      [(n, h) for n, h, _ in rows], set())
        import_rows.stage(db, [(n, s) for n, _, s in rows if n not in known], [])
        store_subscribers.upsert_subscribers(db, [s for n, _, s in rows if n not in known])
        with db.transaction():
            import_seen.remember(db, PATH)
        return known
    finally:
        import_rows.end(db)


def test_rows_are_found_unchanged_while_their_subscriber_holds_their_values(
        tmp_path: Path) -> None:
    a, b = Subscriber("a@example.org", "A", "en"), Subscriber("b@example.org", "B", "fr")
    with open_store(tmp_path / "t.db") as db:
        assert one_import(db, [(2, "h-a", a), (3, "h-b", b)]) == set()
        assert one_import(db, [(2, "h-a", a), (3, "h-b", b)]) == {2, 3}
        store_subscribers.upsert_subscribers(db, [Subscriber("b@example.org", "Bee", "fr")])
        assert one_import(db, [(2, "h-a", a), (3, "h-b", b)]) == {2}  # b changed since
        assert one_import(db, [(3, "h-b", b)]) == {3}  # a's row left the file ...
        assert one_import(db, [(2, "h-a", a), (3, "h-b", b)]) == {3}  # ... and was forgotten


def test_a_deleted_subscriber_takes_its_rows_along(tmp_path: Path) -> None:
    a = Subscriber("a@example.org", "A", "en")
    with open_store(tmp_path / "t.db") as db:
        one_import(db, [(2, "h-a", a)])
        with db.transaction():
            db.execute("DELETE FROM subscribers WHERE email = ?", (a.email,))
        assert db.all("SELECT * FROM import_seen") == []
        assert one_import(db, [(2, "h-a", a)]) == set()
