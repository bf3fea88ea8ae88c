"""One open database, whichever engine: the handle every store function takes.

The store's SQL is written once, in the portable subset SQLite and PostgreSQL share
(`?` placeholders, `ON CONFLICT ... DO NOTHING`, no Python callbacks inside SQL); an engine
is a subclass of `Db` that runs it. Rows come back as `Row` (by name or by position) and
never leave `newsletter.store`: the store's functions turn them into frozen dataclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from newsletter.errors import NewsletterError


class StoreError(NewsletterError):
    """The database failed (disk full, read-only, corrupt, unreachable): the operator's call."""

    exit_code = 1

    def __init__(self, detail: str, *, where: str | None = None) -> None:
        super().__init__(f"database: {detail}", where=where)
        self.detail = detail  # the engine's own words, e.g. "database or disk is full"


class IntegrityError(StoreError):
    """A constraint refused a write (a duplicate key): callers that expect it catch it."""


class Row(Protocol):
    def __getitem__(self, key: int | str) -> Any: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


Params = Sequence[Any] | dict[str, Any]


class Db(ABC):
    """A connection with the store's few needs. Not thread-safe: one per thread or process."""

    engine: str = ""
    where: str = ""  # the file or host, for error messages (never a password)

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> Cursor: ...

    def copy_rows(self, table: str, columns: Sequence[str],
                  rows: Iterable[Sequence[Any]]) -> None:
        """A bulk load: rows straight into table, no conflict handling (db migrate-to).
        PostgreSQL does it with COPY; this plain INSERT is the other engines' way."""
        marks = ", ".join("?" * len(columns))
        self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @abstractmethod
    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[None]:
        """One unit of work: everything in it commits together or not at all. `immediate`
        takes the write lock at the start (SQLite: BEGIN IMMEDIATE), so writers queue instead
        of failing half-way."""
        yield  # pragma: no cover

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements in the block go to the server together and their results come back
        at its end (PostgreSQL's pipeline mode: one round trip for a whole transaction);
        read a cursor's rows after the block. An engine in the process (SQLite) has no
        round trips to save: nothing changes."""
        yield

    @property
    @abstractmethod
    def in_transaction(self) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def one(self, sql: str, params: Params = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Params = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
