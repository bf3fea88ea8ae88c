"""Copying the SQLite store into an empty PostgreSQL database (`newsletter db migrate-to`).

Every table both schemas have is copied in foreign-key order (subscribers before the
deliveries and reader_fields that point at them), in batches (one COPY each), so memory
stays flat whatever a table's size. The whole copy is one PostgreSQL transaction under the
store's write lock: a failure rolls it back and the target stays empty. The source is read
through a read-only connection inside one read transaction, so every table comes from the
same moment (WAL: writers may go on meanwhile, the copy does not see them). Row counts are
compared per table before COMMIT, and the identity sequences are moved past the copied ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from graphlib import TopologicalSorter
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

from newsletter.store import catalog
from newsletter.store.connect import (
    _sqlite_path,
    connect_sqlite,
    is_server_url,
    open_store,
    url_scheme,
)
from newsletter.store.db import Db, StoreError
from newsletter.store.schema import SCHEMA_VERSION
from newsletter.store.sqlite_db import SqliteDb

BATCH = 2000  # rows per COPY: a few hundred kB in memory
Progress = Callable[[str, int, int], object]  # table, rows copied so far, rows in the table


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    target_rows: int
    next_id: int | None = None  # the id PostgreSQL gives the next row (identity tables)


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str  # postgresql://user@host:port/db, never the password
    tables: tuple[TableCopy, ...]

    @property
    def rows(self) -> int:
        return sum(t.target_rows for t in self.tables)


def sqlite_source(url: str) -> Path:
    """The SQLite file a configured store names; a server URL is not a source."""
    scheme = url_scheme(url)
    if is_server_url(url):
        raise StoreError("the configured database is already PostgreSQL; migrate-to copies "
                         "from the SQLite file (unset NEWSLETTER_DATABASE_URL or [store] url)")
    path = Path(_sqlite_path(url)) if scheme == "sqlite" else Path(url)
    if scheme not in ("", "sqlite"):
        raise StoreError(f"unknown URL scheme {scheme!r}")
    if not path.is_file():
        raise StoreError("no SQLite database here: nothing to copy", where=str(path))
    return path


def copy_to_postgres(source: Path, url: str, *, on_progress: Progress = lambda *a: None,
                     ) -> CopyReport:
    """Copy the SQLite file into the empty PostgreSQL database `url` (created or migrated
    to the current schema first); all or nothing."""
    if not is_server_url(url):
        raise StoreError("migrate-to copies into PostgreSQL: postgresql://USER@HOST:PORT/DB")
    reader = _open_read_only(source)
    try:
        target = open_store(url)
        try:
            return CopyReport(str(source), target.where, _copy(reader, target, on_progress))
        finally:
            target.close()
    finally:
        reader.close()


def _copy(reader: Db, target: Db, on_progress: Progress) -> tuple[TableCopy, ...]:
    """Every table in one transaction: a failure (the server gone mid-copy) leaves nothing."""
    try:
        _refuse_data(target)
        with reader.transaction(immediate=False), target.transaction():
            _refuse_data(target)  # checked again under the write lock
            return tuple(_copy_all(reader, target, on_progress))
    except _NotEmpty:
        raise
    except StoreError as exc:
        raise StoreError(f"{exc.detail}; nothing was copied: run migrate-to again",
                         where=exc.where) from exc


def _open_read_only(path: Path) -> Db:
    """The source read-only (mode=ro: this connection cannot write to the file). A file on
    an older schema is first migrated up as every command of this version does (the one
    change made to the source), so the copy always reads the current tables."""
    reader = _connect_ro(path)
    if int(reader.one("PRAGMA user_version")[0]) != SCHEMA_VERSION:
        reader.close()
        connect_sqlite(path).close()  # migrates, or refuses a newer file
        reader = _connect_ro(path)
    return reader


def _connect_ro(path: Path) -> Db:
    try:
        raw = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True,
                              isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(str(exc), where=str(path)) from exc
    raw.row_factory = sqlite3.Row
    return SqliteDb(raw, str(path))


class _NotEmpty(StoreError):
    """The target holds data: refused before anything is written."""


def _refuse_data(target: Db) -> None:
    for table in ["subscribers", *catalog.tables(target)]:
        rows = int(target.one(f"SELECT count(*) FROM {table}")[0])
        if rows:
            what = "subscribers" if table == "subscribers" else f"rows in {table}"
            raise _NotEmpty(f"{target.where} already has {rows:,} {what}; migrate-to copies "
                             "into an empty database")


def _copy_all(reader: Db, target: Db, on_progress: Progress) -> Iterator[TableCopy]:
    into = set(catalog.tables(target))
    for table in _in_key_order(reader):
        total = int(reader.one(f"SELECT count(*) FROM {table}")[0])
        if table not in into:
            if total:
                raise StoreError(f"table {table} ({total:,} rows) has no PostgreSQL twin")
            continue
        _copy_table(reader, target, table, total, on_progress)
        copied = int(target.one(f"SELECT count(*) FROM {table}")[0])
        if copied != total:
            raise StoreError(f"{table}: {total:,} rows read but {copied:,} in PostgreSQL")
        yield TableCopy(table, total, copied, _advance_ids(target, table))


def _in_key_order(db: Db) -> list[str]:
    """Every table after the tables its foreign keys point at."""
    graph: dict[str, set[str]] = {t: set() for t in catalog.tables(db)}
    for referenced in list(graph):
        for table, _column in catalog.references_to(db, referenced):
            graph[table].add(referenced)
    return list(TopologicalSorter(graph).static_order())


def _copy_table(reader: Db, target: Db, table: str, total: int, on_progress: Progress) -> None:
    source_types = catalog.column_types(reader, table)
    target_types = catalog.column_types(target, table)
    missing = [c for c in source_types if c not in target_types]
    if missing:
        raise StoreError(f"{table}: PostgreSQL has no column {', '.join(missing)}")
    columns = list(source_types)
    kinds = [target_types[c] for c in columns]
    names = ", ".join(columns)
    insert = _Insert(table, f"INSERT INTO {table} ({names}) OVERRIDING SYSTEM VALUE VALUES "
                     f"({', '.join('?' * len(columns))})", columns,
                     catalog.primary_key(reader, table))
    done = 0
    # closed here, while the connection is open: a failed batch leaves the cursor unfinished
    with closing(_read(reader, f"SELECT {names} FROM {table} ORDER BY rowid")) as rows:
        while batch := [_fit(insert, kinds, row) for row in islice(rows, BATCH)]:
            _insert_batch(target, insert, batch)
            done += len(batch)
            on_progress(table, done, total)


def _read(reader: Db, sql: str) -> Generator[Any, None, None]:
    """The rows one by one as SQLite steps through them (memory flat); an error met while
    stepping (a corrupt page, an I/O error) comes out as StoreError too."""
    try:
        yield from reader.execute(sql)
    except sqlite3.Error as exc:
        raise StoreError(str(exc), where=reader.where) from exc


def _fit(insert: _Insert, kinds: list[str], row: Any) -> tuple[Any, ...]:
    try:
        return tuple(_value(k, v) for k, v in zip(kinds, row, strict=True))
    except UnicodeDecodeError as exc:
        raise StoreError(f"copying {insert.table} ({insert.name(row)}): bytes that are not "
                         "UTF-8 in a text column") from exc


def _value(kind: str, value: Any) -> Any:
    """A SQLite value as the PostgreSQL column takes it. SQLite keeps whatever type it was
    given; a BLOB in a TEXT column (or text in a BLOB one) is the case that occurs."""
    if kind == "bytea" and isinstance(value, str):
        return value.encode("utf-8")
    if kind in ("text", "citext") and isinstance(value, bytes):
        return value.decode("utf-8", errors="strict")
    if kind in ("text", "citext") and isinstance(value, int | float):
        return str(value)
    return value


@dataclass(frozen=True)
class _Insert:
    table: str
    sql: str  # one row's INSERT, to find the row PostgreSQL refused
    columns: list[str]
    key: list[str]  # the source's primary key, to name a refused row

    def name(self, row: Any) -> str:
        return ", ".join(f"{k}={row[self.columns.index(k)]!r}" for k in self.key
                         if k in self.columns)


def _insert_batch(target: Db, insert: _Insert, batch: list[tuple[Any, ...]]) -> None:
    """The batch in one COPY under a savepoint. If PostgreSQL refuses it, the rows again one
    by one to name the one refused (a failed statement aborts the transaction; the
    savepoint brings it back), then the error with that row's key."""
    target.execute("SAVEPOINT copy_batch")
    try:
        target.copy_rows(insert.table, insert.columns, batch)
    except StoreError as exc:
        target.execute("ROLLBACK TO SAVEPOINT copy_batch")
        raise _which_row(target, insert, batch) or exc from exc
    target.execute("RELEASE SAVEPOINT copy_batch")


def _which_row(target: Db, insert: _Insert, batch: list[tuple[Any, ...]]) -> StoreError | None:
    for row in batch:
        target.execute("SAVEPOINT copy_row")
        try:
            target.execute(insert.sql, row)
        except StoreError as exc:
            return StoreError(f"copying {insert.table} ({insert.name(row)}): {exc.detail}")
        finally:
            target.execute("ROLLBACK TO SAVEPOINT copy_row")
    return None


def _advance_ids(target: Db, table: str) -> int | None:
    """Move each identity sequence past the copied ids, so the next row does not collide
    with a copied one (an empty table starts at 1). setval is not undone by a ROLLBACK,
    which leaves a failed copy's target empty with sequences merely ahead: harmless."""
    next_id = None
    for column in catalog.identity_columns(target, table):
        top = target.one(f"SELECT max({column}) FROM {table}")[0]
        # is_called false: the next value is 1 itself (a literal: bools go in as integers)
        called = "true" if top is not None else "false"
        target.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), ?, {called})",
                       (table, column, top or 1))
        next_id = (top or 0) + 1
    return next_id
