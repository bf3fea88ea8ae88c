"""The SQLite schema: a file left at ANY earlier version migrates to the current one, keeps
its rows, and ends with the same tables and columns as a new file; a failed migration leaves
the previous version; a newer file is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from at_once import errors_at_once

from newsletter.errors import NewsletterError
from newsletter.store import schema
from newsletter.store.connect import open_store
from newsletter.store.db import StoreError
from newsletter.store.schema import SCHEMA_VERSION, apply_migration, schema_version
from newsletter.store.sqlite_db import open_sqlite

# SQLite files left at earlier versions, read through sqlite_master and PRAGMA: the
# PostgreSQL schema and its migrations are tests/store/test_postgres_schema.py's.
pytestmark = pytest.mark.sqlite_only

STAMP = "2026-11-01T09:00:00.000000+00:00"


def _file_at(path: Path, version: int) -> None:
    """A file as the program of schema `version` left it (foreign keys on, as it runs)."""
    db = open_sqlite(str(path))
    db.execute("PRAGMA foreign_keys=ON")
    for target in range(version):
        apply_migration(db, target)
    assert schema_version(db) == version
    db.close()


def _tables(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    """table -> (column, type, not null) in order: what a caller's SQL can rely on."""
    with sqlite3.connect(path) as raw:
        names = [r[0] for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: [(c[1], c[2], c[3]) for c in raw.execute(f"PRAGMA table_info({t})")]
                for t in names}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        return {r[0] for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def _add_rows(path: Path, version: int) -> None:
    """One row in each table that the later migrations rebuild or extend."""
    with sqlite3.connect(path) as raw:
        if version >= 1:
            raw.execute("INSERT INTO subscribers (email, name, language, tags, created_at, "
                        "updated_at) VALUES ('Ann@Example.org', 'Ann', 'fr', 'a;b', ?, ?)",
                        (STAMP, STAMP))
            raw.execute("INSERT INTO deliveries (issue, subscriber_id, language, state, "
                        "updated_at) VALUES ('2026-10', 1, 'fr', 'sent', ?)", (STAMP,))
            raw.execute("INSERT INTO feed_cache (url, body, fetched_at) VALUES "
                        "('https://example.org/feed', x'00ff', ?)", (STAMP,))
        if version >= 2:
            raw.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES "
                        "('ann@example.org', 'soft', 'k1', ?)", (STAMP,))
        if version >= 6:
            raw.execute("INSERT INTO mail_queue (kind, email, language, state, "
                        "next_attempt_at, created_at, updated_at) VALUES ('confirm', "
                        "'bo@example.org', 'en', 'sent', ?, ?, ?)", (STAMP, STAMP, STAMP))


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_a_file_at_every_earlier_version_migrates_and_keeps_its_rows(tmp_path: Path,
                                                                     version: int) -> None:
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    open_store(fresh).close()
    _file_at(old, version)
    _add_rows(old, version)

    with open_store(old) as db:
        assert schema_version(db) == SCHEMA_VERSION
        if version >= 1:
            sub = db.one("SELECT email, name, language, tags, status FROM subscribers")
            assert tuple(sub) == ("Ann@Example.org", "Ann", "fr", "a;b", "active")
            assert db.one("SELECT state, variant, transport FROM deliveries")[0] == "sent"
            assert db.one("SELECT body FROM feed_cache")[0] == b"\x00\xff"
        if version >= 2:  # bounce_events was rebuilt at 7: the event and its defaults stay
            assert tuple(db.one("SELECT email, kind, reason, domain FROM bounce_events")) == \
                ("ann@example.org", "soft", "", "")
        if version >= 6:  # mail_queue was rebuilt at 11 and 14 to widen its kind CHECK
            assert tuple(db.one("SELECT kind, email, state FROM mail_queue")) == \
                ("confirm", "bo@example.org", "sent")
            db.execute("INSERT INTO mail_queue (kind, email, language, state, next_attempt_at, "
                       "created_at, updated_at) VALUES ('manage', 'c@x.org', 'en', 'pending', "
                       "?, ?, ?)", (STAMP, STAMP, STAMP))
    assert _tables(old) == _tables(fresh)
    assert _indexes(old) == _indexes(fresh)


def test_opening_a_current_file_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    open_store(path).close()
    before = _tables(path)
    with open_store(path) as db:
        assert schema_version(db) == SCHEMA_VERSION
    assert _tables(path) == before


def test_a_failed_migration_leaves_the_file_at_the_previous_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "n.db"
    open_store(path).close()
    monkeypatch.setattr(schema, "_MIGRATIONS", [
        *schema._MIGRATIONS, "CREATE TABLE half_done (x TEXT); INSERT INTO nowhere VALUES (1)"])

    with pytest.raises(StoreError) as failed:
        open_store(path)

    assert "no such table: nowhere" in str(failed.value)
    assert str(failed.value).startswith(f"{path}: database: ")
    monkeypatch.undo()
    with open_store(path) as db:
        assert schema_version(db) == SCHEMA_VERSION
        assert db.one("SELECT 1 FROM sqlite_master WHERE name = 'half_done'") is None


def test_a_file_from_a_newer_program_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    open_store(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(NewsletterError) as newer:
        open_store(path)

    assert str(newer.value) == (f"{path}: database schema {SCHEMA_VERSION + 1} is newer than "
                                f"this program ({SCHEMA_VERSION}); upgrade newsletter")


def test_a_migration_another_connection_applied_meanwhile_is_skipped(tmp_path: Path) -> None:
    """serve's request thread and its mail worker open a new file at the same moment: both
    read version k, one applies k -> k + 1, and the other must not apply it again (CI saw
    'duplicate column name: confirm_sent_at', answered 503)."""
    path = tmp_path / "n.db"
    _file_at(path, 1)
    first, second = open_sqlite(str(path)), open_sqlite(str(path))
    assert schema_version(first) == schema_version(second) == 1

    for target in range(1, SCHEMA_VERSION):
        apply_migration(first, target)
        apply_migration(second, target)  # read 1 before `first` wrote; now a no-op

    assert schema_version(second) == SCHEMA_VERSION
    first.close()
    second.close()
    assert _tables(path) == _fresh_tables(tmp_path)


def test_connections_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Six threads open each of 20 new files together: none fails (CI saw "database is
    locked" from the switch to WAL about once in fifteen files) and each file is whole."""
    fresh = _fresh_tables(tmp_path)
    for n in range(20):
        path = tmp_path / f"n{n}.db"
        assert errors_at_once(lambda: open_store(path).close(), 6) == []  # noqa: B023
        assert _tables(path) == fresh


def _fresh_tables(tmp_path: Path) -> dict[str, list[tuple[str, str, int]]]:
    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    return _tables(fresh)
