"""The other engine for any suite: `NEWSLETTER_TEST_ENGINE=postgresql pytest -p pg_engine
tests/test_x.py` runs each test against a fresh PostgreSQL database of the session's
throwaway cluster (tests/pg_cluster.py) instead of the project's SQLite file.

NEWSLETTER_DATABASE_URL names that database (the program's own way to choose the engine,
inherited by the `newsletter` subprocesses the tests start); a test that opens the file by
path in this process (Project.connect) gets the same database, and so does a test that reads
it with sqlite3.connect(FILE.db): it gets a stand-in with sqlite3's few methods over the same
database, each statement committed at once. A test that needs SQLite itself (PRAGMA,
sqlite_master, an old file) is marked `sqlite_only` and skipped on PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENGINE_ENV = "NEWSLETTER_TEST_ENGINE"


def on_postgresql() -> bool:
    return os.environ.get(ENGINE_ENV, "sqlite") == "postgresql"


@pytest.fixture(autouse=True)
def _store_engine(request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not on_postgresql():
        yield
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("reads the SQLite file itself (NEWSLETTER_TEST_ENGINE=postgresql)")
    from newsletter.store import connect
    from newsletter.store.postgres_db import connect_postgres

    cluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("_pg_template")
    name = "t_" + uuid.uuid4().hex[:12]
    cluster.sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = cluster.url(name)
    monkeypatch.setenv(connect.URL_ENV, url)

    def by_path(path: Path) -> object:  # every file a test names is the one database
        return connect_postgres(url)

    monkeypatch.setattr(connect, "connect_sqlite", by_path)
    real_connect = sqlite3.connect

    def sqlite_connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        if str(database).endswith(".db"):
            return SqliteStandIn(connect_postgres(url))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", sqlite_connect)
    yield
    # Hundreds of tests: each database dropped (its connections too, should a test leave
    # one) keeps the cluster a few MB, and its shutdown at the end of the session quick.
    cluster.sql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_template(pg_cluster: Any) -> str:
    """An empty database at the current schema, copied for each test: CREATE DATABASE ...
    TEMPLATE costs what an empty one does, and the migration (most of a second) runs once
    per session instead of once per test; each copy is still a fresh database of its own."""
    from newsletter.store.postgres_db import connect_postgres

    name = pg_cluster.new_database()
    connect_postgres(pg_cluster.url(name)).close()  # a template must have no connection
    return name


class SqliteStandIn:
    """sqlite3.Connection's methods the tests use, over a PostgresDb (autocommit)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.row_factory: Any = None  # rows read by name and position either way

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        return self._db.executemany(sql, rows)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # as sqlite3: the with block commits (here: each statement did), never closes


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test reads the SQLite file itself")
