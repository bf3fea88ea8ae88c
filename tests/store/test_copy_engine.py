"""Copying a SQLite store into PostgreSQL (store/copy_engine.py): every table, equal counts,
the same values read back, identity sequences past the copied ids, all or nothing, and the
source file untouched. Real PostgreSQL (the pg_cluster fixture); skipped without it."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from newsletter.model import Subscriber
from newsletter.store import catalog, copy_engine
from newsletter.store import schema as sqlite_schema
from newsletter.store.connect import open_store
from newsletter.store.copy_engine import copy_to_postgres, sqlite_source
from newsletter.store.db import IntegrityError, StoreError
from newsletter.store.subscribers import add_subscriber, get_subscriber

# The source is a SQLite file by definition: under `-p pg_engine` every file would be the
# PostgreSQL database itself.
pytestmark = pytest.mark.sqlite_only

T = "2026-11-01T09:00:00.123456+00:00"  # timestamps are ISO text on both engines
BLOB = bytes(range(256))  # every byte value, NUL included

# One row or more in every table of the schema (test_every_table_holds_a_fixture_row checks
# that a table added later gets one here too).
ROWS = {
    "subscribers": [(1, "Ana.Lee@Example.COM", "Ana", "es", "vip;press", "active", "", T, T,
                     None),
                    (7, "zoë@example.fr", "Zoë 李", "fr", "", "unsubscribed", "form", T, T, T),
                    (9, "ÉLODIE@example.fr", "", "", "", "bounced", "5.1.1", T, T, None)],
    "feed_cache": [("https://example.org/feed", '"e1"', None, BLOB, T)],
    "editions": [("2026-11", "en", "Subj", "pre", "<p>h</p>", "t", "en", T)],
    "deliveries": [("2026-11", 1, "en", "sent", 1, None, None, "<m1@x>", "250 ok", T, "h:1",
                    "", "smtp", None),
                   ("2026-11", 7, "en", "deferred", 2, T, T, None, "451 later", T, None, "b",
                    "smtp", T)],
    "sent_items": [("item-1", "2026-11")],
    "processed_reports": [("<r1@x>", T, "hard")],
    "imported_files": [("subscribers/a.csv", "ab" * 32, T)],
    "import_sources": [(3, "/srv/list/subscribers/a.csv")],
    "import_seen": [(3, "0f" * 16, 1, "Ana", "es", "vip;press")],
    "optin_requests": [(4, "p1", "New@Example.org", "new@example.org", "", "en", "c1",
                        "confirmed", T, T)],
    "bounce_events": [(12, "ÉLODIE@example.fr", "hard", "<r1@x>", T, "5.1.1", "example.fr")],
    "translation_memory": [("en", "fr", "h1", "Hello", "Bonjour", "2026-11", T)],
    "reader_fields": [(1, "name", T)],
    "edition_variants": [("2026-11", "en", "b", "S", "p", "<p/>", "t", "en")],
    "segment_counts": [("2026-11", "en", "", "send", 2, "all")],
    "consent_events": [(30, "Ana.Lee@Example.COM", T, "subscribe", "form", "v1")],
    "consent_texts": [("v1", "en", "I agree", T)],
    "optin_forms": [("f1", "en", "v1")],
    "forgotten": [("k" * 64, "2026-11-01")],
    "forgotten_deliveries": [("2026-10", "en", "sent", 3)],
    "welcomed": [("w" * 64, T)],
    "unsubscribe_reasons": [("too many", 2)],
    "why_tickets_used": [("n1", T)],
    "reach_links": [("L1", "2026-11", "en", "https://example.org/a", "link", 1, 5, 1)],
    "send_gate": [(1, 1795000000.125, 2, "policy", "host-a", 1795000100.5, 1795000090.25)],
    "mail_queue": [(40, "confirm", "New@Example.org", "en", "p1", "sent", 1, T, None, None,
                    None, "<q@x>", "250", T, T)],
}


def fill(path: Path) -> Path:
    open_store(path).close()
    raw = sqlite3.connect(path)
    for table, rows in ROWS.items():
        marks = ", ".join("?" * len(rows[0]))
        raw.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    raw.commit()
    raw.close()
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return fill(tmp_path / "newsletter.db")


def everything(url: str | Path) -> dict[str, list[tuple]]:
    with open_store(url) as db:
        return {t: sorted((tuple(r) for r in db.all(f"SELECT * FROM {t}")), key=repr)
                for t in catalog.tables(db)}


def test_every_table_holds_a_fixture_row(source: Path) -> None:
    with open_store(source) as db:
        assert sorted(ROWS) == catalog.tables(db)


def test_every_table_is_copied_and_counts_are_equal(source: Path, pg_url: str) -> None:
    report = copy_to_postgres(source, pg_url)
    assert sorted(t.table for t in report.tables) == sorted(ROWS)
    target = everything(pg_url)
    for t in report.tables:
        assert t.source_rows == t.target_rows == len(ROWS[t.table]) == len(target[t.table])
    assert report.rows == sum(len(r) for r in ROWS.values())
    assert report.target == pg_url  # the user@host:port/db it names


def test_values_read_back_the_same_on_both_engines(source: Path, pg_url: str) -> None:
    copy_to_postgres(source, pg_url)
    assert everything(pg_url) == everything(source)  # timestamps, blobs, names, 0/1 flags
    with open_store(pg_url) as db:
        assert db.one("SELECT body FROM feed_cache")[0] == BLOB
        assert db.one("SELECT filtered FROM reach_links")[0] == 1


def test_a_new_row_after_the_copy_gets_a_fresh_id(source: Path, pg_url: str) -> None:
    report = copy_to_postgres(source, pg_url)
    assert {t.table: t.next_id for t in report.tables if t.next_id} == {
        "subscribers": 10, "optin_requests": 5, "bounce_events": 13, "consent_events": 31,
        "mail_queue": 41, "import_sources": 4}
    with open_store(pg_url) as db:
        add_subscriber(db, Subscriber(email="new.reader@example.com"))
        assert get_subscriber(db, "new.reader@example.com").id == 10  # type: ignore[union-attr]
        db.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES "
                   "('a@b', 'soft', 'k', ?)", (T,))
        assert db.one("SELECT max(id) FROM bounce_events")[0] == 13


def test_an_address_differing_only_in_case_stays_one_subscriber(source: Path,
                                                                 pg_url: str) -> None:
    copy_to_postgres(source, pg_url)
    with open_store(pg_url) as db:
        assert get_subscriber(db, "ana.lee@example.com").id == 1  # type: ignore[union-attr]
        assert get_subscriber(db, "élodie@EXAMPLE.fr") is None  # ASCII folding, as NOCASE
        with pytest.raises(IntegrityError):
            db.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES "
                       "('ANA.LEE@example.com', ?, ?)", (T, T))


def test_a_failure_mid_copy_leaves_the_target_empty_and_names_the_row(
        source: Path, pg_url: str) -> None:
    raw = sqlite3.connect(source)  # foreign keys off: an orphan an old file might hold
    raw.execute("INSERT INTO deliveries (issue, subscriber_id, language, state, updated_at) "
                "VALUES ('2026-12', 99, 'en', 'pending', ?)", (T,))
    raw.commit()
    raw.close()
    with pytest.raises(StoreError) as caught:
        copy_to_postgres(source, pg_url)
    assert "copying deliveries (issue='2026-12', subscriber_id=99)" in str(caught.value)
    assert "foreign key" in str(caught.value)
    assert all(rows == [] for rows in everything(pg_url).values())


@pytest.mark.parametrize(("table", "value", "message"), [
    ("subscribers", "Ana\x00Lee", "copying subscribers (id=1): PostgreSQL text fields cannot "
                                  "contain NUL"),
    ("consent_texts", b"\xff\xfe", "copying consent_texts (version='v1'): bytes that are not "
                                   "UTF-8 in a text column"),
])
def test_a_value_postgresql_cannot_hold_names_its_row_and_copies_nothing(
        source: Path, pg_url: str, table: str, value: object, message: str) -> None:
    column = "name" if table == "subscribers" else "text"
    raw = sqlite3.connect(source)  # SQLite keeps a NUL in text, and bytes in a TEXT column
    raw.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = 1", (value,))
    raw.commit()
    raw.close()
    with pytest.raises(StoreError) as caught:
        copy_to_postgres(source, pg_url)
    assert message in str(caught.value)
    assert all(rows == [] for rows in everything(pg_url).values())


def test_the_source_file_is_not_changed(source: Path, pg_url: str) -> None:
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    copy_to_postgres(source, pg_url)
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_a_target_holding_data_is_refused(source: Path, pg_url: str) -> None:
    copy_to_postgres(source, pg_url)
    with pytest.raises(StoreError, match=r"already has 3 subscribers; migrate-to copies into "
                                         r"an empty database"):
        copy_to_postgres(source, pg_url)
    with open_store(pg_url) as db:
        db.execute("DELETE FROM reader_fields")
        db.execute("DELETE FROM deliveries")
        db.execute("DELETE FROM subscribers")
    with pytest.raises(StoreError, match="already has 1 rows in bounce_events"):
        copy_to_postgres(source, pg_url)


def test_big_tables_go_in_batches_with_progress(source: Path, pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(source) as db, db.transaction():
        db.executemany("INSERT INTO subscribers (email, created_at, updated_at) VALUES "
                       "(?, ?, ?)", [(f"r{n}@example.com", T, T) for n in range(20)])
    monkeypatch.setattr(copy_engine, "BATCH", 6)
    seen: list[tuple[str, int, int]] = []
    copy_to_postgres(source, pg_url, on_progress=lambda *a: seen.append(a))
    assert [s for s in seen if s[0] == "subscribers"] == [
        ("subscribers", n, 23) for n in (6, 12, 18, 23)]
    assert everything(pg_url)["subscribers"] == everything(source)["subscribers"]


def test_a_source_on_an_older_schema_is_migrated_up_first(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    for statement in ";".join(sqlite_schema._MIGRATIONS[:6]).split(";"):
        if statement.strip():
            old.execute(statement)
    old.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES "
                "('old@example.com', ?, ?)", (T, T))
    old.execute("PRAGMA user_version = 6")
    old.commit()
    old.close()
    report = copy_to_postgres(path, pg_url)
    assert {t.table: t.target_rows for t in report.tables}["subscribers"] == 1
    assert len(report.tables) == len(ROWS)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION


def test_sources_and_targets_that_are_not_the_right_engine_are_refused(
        source: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="already PostgreSQL"):
        sqlite_source("postgresql://u@h/db")
    with pytest.raises(StoreError, match="nothing to copy"):
        sqlite_source(str(tmp_path / "missing.db"))
    assert sqlite_source(f"sqlite:///{source}") == source
    with pytest.raises(StoreError, match="copies into PostgreSQL"):
        copy_to_postgres(source, f"sqlite:///{tmp_path / 'other.db'}")
    assert not (tmp_path / "other.db").exists()


def test_copy_rows_loads_rows_as_given_on_both_engines(tmp_path: Path, pg_url: str) -> None:
    rows = [(5, "a@example.com", "Ana", T, T), (2, "B@example.com", "", T, T)]
    for url in (tmp_path / "bulk.db", pg_url):
        with open_store(url) as db:
            db.copy_rows("subscribers", ["id", "email", "name", "created_at", "updated_at"],
                         rows)
            assert [tuple(r) for r in db.all("SELECT id, email, name, created_at, "
                                             "updated_at FROM subscribers ORDER BY id")] == \
                sorted(rows)
