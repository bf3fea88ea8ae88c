"""The PostgreSQL schema: created and migrated on open, the SQLite schema's tables and
columns, once only when several hosts open the database at the same moment."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from at_once import errors_at_once

from newsletter.errors import NewsletterError
from newsletter.store import schema_pg
from newsletter.store.connect import connect_sqlite
from newsletter.store.postgres_db import connect_postgres, open_postgres


def _pg_columns(url: str) -> dict[str, list[str]]:
    with open_postgres(url) as db:
        rows = db.all("SELECT table_name, column_name FROM information_schema.columns "
                      "WHERE table_schema = current_schema() AND table_name != "
                      "'schema_version' ORDER BY table_name, ordinal_position")
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _sqlite_columns(path: Path) -> dict[str, list[str]]:
    connect_sqlite(path).close()
    raw = sqlite3.connect(path)
    try:
        names = [r[0] for r in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: [c[1] for c in raw.execute(f'PRAGMA table_info("{t}")')] for t in names}
    finally:
        raw.close()


@pytest.mark.sqlite_only  # reads the SQLite file's sqlite_master beside the PostgreSQL one
def test_the_same_tables_and_columns_as_sqlite(pg_url: str, tmp_path: Path) -> None:
    connect_postgres(pg_url).close()
    assert _pg_columns(pg_url) == _sqlite_columns(tmp_path / "newsletter.db")


def test_migrating_twice_is_a_no_op(pg_url: str) -> None:
    with connect_postgres(pg_url) as db:
        db.execute("INSERT INTO welcomed (key_hash, at) VALUES ('k', 'now')")
    with connect_postgres(pg_url) as db:
        assert schema_pg.schema_version(db) == schema_pg.SCHEMA_VERSION
        assert db.one("SELECT count(*) FROM schema_version")[0] == 1
        assert db.one("SELECT count(*) FROM welcomed")[0] == 1


def test_hosts_opening_at_once_migrate_once(pg_url: str) -> None:
    assert errors_at_once(lambda: connect_postgres(pg_url).close(), 4) == []
    with open_postgres(pg_url) as db:
        assert schema_pg.schema_version(db) == schema_pg.SCHEMA_VERSION


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    with connect_postgres(pg_url) as db:
        db.execute("UPDATE schema_version SET version = ?", (schema_pg.SCHEMA_VERSION + 1,))
    with pytest.raises(NewsletterError, match="newer than this program"):
        connect_postgres(pg_url)


def test_text_compares_bytes_as_sqlite_does(pg_url: str) -> None:
    with connect_postgres(pg_url) as db:
        rows = [(k, "x") for k in ("b", "B", "a", "_", "é")]
        db.executemany("INSERT INTO welcomed (key_hash, at) VALUES (?, ?)", rows)
        ordered = [r[0] for r in db.all("SELECT key_hash FROM welcomed ORDER BY key_hash")]
        other = db.all("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = current_schema() AND data_type IN "
                       "('text', 'USER-DEFINED') AND collation_name IS DISTINCT FROM 'C'")
    assert ordered == sorted(k for k, _ in rows)  # code point order, as SQLite's BINARY
    assert other == []  # every text column says so itself, whatever the database's locale


def test_open_store_picks_the_engine_from_the_url(pg_url: str) -> None:
    from newsletter.store.connect import open_store
    from newsletter.store.postgres_db import PostgresDb

    with open_store(pg_url) as db:
        assert isinstance(db, PostgresDb) and db.engine == "postgresql"
        assert schema_pg.schema_version(db) == schema_pg.SCHEMA_VERSION
