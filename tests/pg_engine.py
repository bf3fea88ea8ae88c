"""The other engine for any suite: `NEWSLETTER_TEST_ENGINE=postgresql pytest -p pg_engine
tests/test_x.py` runs each test against a fresh PostgreSQL database of the session's
throwaway cluster (tests/pg_cluster.py) instead of the project's SQLite file.

NEWSLETTER_DATABASE_URL names that database (the program's own way to choose the engine,
inherited by the `newsletter` subprocesses the tests start); a test that opens the file by
path in this process (Project.connect) gets the same database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE_ENV = "NEWSLETTER_TEST_ENGINE"


def on_postgresql() -> bool:
    return os.environ.get(ENGINE_ENV, "sqlite") == "postgresql"


@pytest.fixture(autouse=True)
def _store_engine(request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not on_postgresql() or request.node.get_closest_marker("sqlite_only"):
        yield
        return
    from newsletter.store import connect
    from newsletter.store.postgres_db import connect_postgres

    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.url(cluster.new_database())
    monkeypatch.setenv(connect.URL_ENV, url)

    def by_path(path: Path) -> object:  # every file a test names is the one database
        return connect_postgres(url)

    monkeypatch.setattr(connect, "connect_sqlite", by_path)
    yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test reads the SQLite file itself")
