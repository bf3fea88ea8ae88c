"""The tests' throwaway PostgreSQL cluster (tests/pg_server.py starts it): one for the session,
stopped and deleted at the end. Without PostgreSQL's binaries every test that uses the
fixture is skipped with the reason; CI installs them (.ci/run).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_server import (  # noqa: F401 - names the tests import from here
    SECRET_USER,
    SUPERUSER,
    PgCluster,
    PgUnavailable,
    _free_port,
    server_binaries,
    throwaway_cluster,
)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One cluster for the whole session (initdb takes a few seconds)."""
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except PgUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """The URL of a new, empty database on the session's cluster."""
    return pg_cluster.url(pg_cluster.new_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # noqa: ANN001
    """A new, empty store on each engine in turn: a SQLite file, then a PostgreSQL database
    (skipped without PostgreSQL's binaries)."""
    if request.param == "sqlite":
        return str(tmp_path / "newsletter.db")
    return request.getfixturevalue("pg_url")
