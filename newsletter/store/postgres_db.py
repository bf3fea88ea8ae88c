"""The shared engine: one PostgreSQL database that several sender and web hosts use at once.

`open_postgres(url)` gives one connection (a command, a sender process); `PostgresPool(url)`
hands out pooled connections (one per web request or worker thread). Either way the store's
portable SQL runs unchanged: `?` and `:name` placeholders become psycopg's, rows read by name
and by position like sqlite3.Row, and any psycopg error is a one-line StoreError.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout

from newsletter.store.db import Cursor, Db, IntegrityError, Params, StoreError
from newsletter.store.pg_connect import (
    connect_kwargs,
    describe,
    one_line,
    password_of,
)
from newsletter.store.postgres_adapt import configure, to_psycopg
from newsletter.store.schema_pg import migrate

# transaction(immediate=True) takes this transaction-scoped advisory lock: the store's one
# "write lock", as SQLite's BEGIN IMMEDIATE (the key is arbitrary; advisory locks are
# per database, so other databases on the same server are not affected).
WRITE_LOCK = 0x6E6C7374  # "nlst"


class _PgCursor:
    """A finished statement: sqlite3's answers (no rows, not an error, after an UPDATE)."""

    def __init__(self, raw: psycopg.Cursor[Any], fail: Callable[[psycopg.Error], StoreError]):
        self._raw, self._fail = raw, fail

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount

    def fetchone(self) -> Any:
        if self._raw.pgresult is None or self._raw.description is None:
            return None
        try:
            return self._raw.fetchone()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def fetchall(self) -> list[Any]:
        if self._raw.description is None:
            return []
        try:
            return self._raw.fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PostgresDb(Db):
    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any], where: str, *, secret: str | None = None,
                 release: Callable[[psycopg.Connection[Any]], None] | None = None) -> None:
        self._raw = raw
        self.where = where
        self._secret = secret
        self._release = release
        self._trace: Callable[[str], object] | None = None

    def _fail(self, exc: psycopg.Error) -> StoreError:
        kind = IntegrityError if isinstance(exc, psycopg.IntegrityError) else StoreError
        return kind(one_line(exc, self._secret))

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        if self._trace is not None:
            self._trace(sql)
        try:
            return _PgCursor(self._raw.execute(to_psycopg(sql), params), self._fail)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        try:
            cur = self._raw.cursor()
            cur.executemany(to_psycopg(sql), list(rows))
            return _PgCursor(cur, self._fail)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    def copy_rows(self, table: str, columns: Sequence[str],
                  rows: Iterable[Sequence[Any]]) -> None:
        """COPY ... FROM STDIN: half the client's work of an INSERT per row, and faster on
        the server (measured on db migrate-to's batches); explicit identity values go in."""
        try:
            with self._raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") \
                    as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise self._fail(exc) from exc

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[None]:
        """READ COMMITTED; `immediate` also takes the store's write lock first, so writers
        queue as on SQLite and every statement after it sees what the last writer
        committed. A failed statement aborts the whole transaction (PostgreSQL's rule)."""
        if self.in_transaction:
            raise StoreError("cannot start a transaction within a transaction")
        self.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            if immediate:
                self.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
            yield
        except BaseException:
            with suppress(StoreError):  # a dropped server: the original error says why
                self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """libpq's pipeline mode: the block's statements are sent without waiting for each
        answer, and the answers are read at its end (one round trip, where each statement
        was one). An error shows there, not at its statement; a transaction it aborted is
        rolled back, so the connection is usable again."""
        try:
            with self._raw.pipeline():
                yield
        except BaseException as exc:
            # An aborted pipeline skips everything up to its end, the block's own ROLLBACK
            # included: the transaction is still open (failed) after it.
            if not self._raw.closed and self.in_transaction:
                with suppress(StoreError):
                    self.execute("ROLLBACK")
            if isinstance(exc, psycopg.Error):
                raise self._fail(exc) from exc
            raise

    @property
    def in_transaction(self) -> bool:
        return self._raw.info.transaction_status != pq.TransactionStatus.IDLE

    def trace(self, callback: Callable[[str], object] | None) -> None:
        """Every statement this handle runs goes to `callback` as the store wrote it (None
        stops): for tests that count queries, as SqliteDb.trace."""
        self._trace = callback

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self._raw)
        elif not self._raw.closed:
            self._raw.close()

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - a guard, not an API
        raise AttributeError(f"Db has no {name!r}: add an operation to newsletter.store")


def open_postgres(url: str, *, password: str | None = None) -> PostgresDb:
    """One connection in autocommit mode (transactions are explicit), rows by name."""
    secret, where = password_of(password), describe(url)
    try:
        raw = psycopg.connect(url, **connect_kwargs(url, secret))
    except psycopg.Error as exc:
        raise StoreError(one_line(exc, secret), where=where) from exc
    configure(raw)
    return PostgresDb(raw, where, secret=secret)


def connect_postgres(url: str, *, password: str | None = None) -> PostgresDb:
    """Open the database and bring its schema up to date (open_store's postgresql branch)."""
    db = open_postgres(url, password=password)
    try:
        migrate(db, db.where)
    except BaseException as exc:
        db.close()
        if isinstance(exc, StoreError) and not exc.where:
            raise type(exc)(exc.detail, where=db.where) from exc
        raise
    return db


class PostgresPool:
    """Connections for a multi-threaded server: `with pool.db() as db:` borrows one and
    gives it back (rolled back if a transaction was left open) when the block ends."""

    def __init__(self, url: str, *, password: str | None = None, size: int = 4,
                 timeout: float = 30) -> None:
        self._secret, self.where = password_of(password), describe(url)
        # While the database is down the pool would log every reconnect attempt; the failed
        # requests log one line each (web/language.py), and the mail queue its own.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        # check: each borrowed connection answers an empty query first, so one broken by a
        # database restart or a dropped link is replaced instead of failing a request.
        self._pool = ConnectionPool(url, kwargs=connect_kwargs(url, self._secret),
                                    min_size=1, max_size=max(1, size), timeout=timeout,
                                    configure=configure, check=ConnectionPool.check_connection,
                                    open=False)
        try:
            self._pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(one_line(exc, self._secret), where=self.where) from exc
        try:
            with self.db() as db:
                migrate(db, self.where)
        except BaseException:
            self._pool.close()
            raise

    def db(self) -> PostgresDb:
        try:
            raw = self._pool.getconn()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(one_line(exc, self._secret), where=self.where) from exc
        return PostgresDb(raw, self.where, secret=self._secret, release=self._pool.putconn)

    def close(self) -> None:
        self._pool.close()

