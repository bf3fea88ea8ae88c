"""The embedded engine: one SQLite file (WAL), the default for one machine."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from newsletter.store.db import Cursor, Db, IntegrityError, Params, StoreError


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    return StoreError(str(exc))


class SqliteDb(Db):
    engine = "sqlite"

    def __init__(self, raw: sqlite3.Connection, where: str) -> None:
        self._raw = raw
        self.where = where

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        try:
            return self._raw.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor:
        try:
            return self._raw.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: writers queue on the lock instead of failing mid-way."""
        self.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._raw.in_transaction

    def close(self) -> None:
        self._raw.close()

    def trace(self, callback: Any) -> None:
        """Every statement this connection runs goes to `callback` (None stops): for tests
        that count queries."""
        self._raw.set_trace_callback(callback)

    def enter_wal(self, *, within: float = 30) -> None:
        """Switch the file to WAL once, waiting while another connection does the same.
        Changing the journal mode needs the file to itself, and SQLite answers SQLITE_BUSY
        at once there instead of calling the busy handler: six connections opening a new
        file together (serve's threads) saw "database is locked". A file already in WAL is
        left alone, so only the first opening of a file ever waits here."""
        deadline, pause = time.monotonic() + within, 0.005
        while True:
            try:
                if self._raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                self._raw.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY or (
                        time.monotonic() > deadline):
                    raise _translate(exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def progress(self, callback: Any, every: int = 100) -> None:
        """`callback` runs every `every` steps of SQLite's virtual machine (None stops): for
        tests that measure a statement's work without a clock."""
        self._raw.set_progress_handler(callback, every)

    def __getattr__(self, name: str) -> Any:  # pragma: no cover - a guard, not an API
        raise AttributeError(f"Db has no {name!r}: add an operation to newsletter.store")


def open_sqlite(path: str, *, timeout: float = 30) -> SqliteDb:
    """A raw connection in autocommit mode (transactions are explicit), rows by name."""
    try:
        raw = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                              check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(str(exc), where=path) from exc
    raw.row_factory = sqlite3.Row
    return SqliteDb(raw, path)
