"""The SQLite database: schema and migrations, and the small queries each stage needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from newsletter.errors import NewsletterError
from newsletter.feeds import CachedFeed

# Each entry migrates from version i to i + 1; PRAGMA user_version records where a file is.
_MIGRATIONS = [
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN
            ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE feed_cache (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body BLOB NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE editions (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        subject TEXT NOT NULL,
        preheader TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        fallback_name TEXT NOT NULL,
        frozen_at TEXT NOT NULL,
        PRIMARY KEY (issue, language)
    );
    CREATE TABLE deliveries (
        issue TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        language TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        first_deferred_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    );
    CREATE INDEX deliveries_by_state ON deliveries (state, issue);
    CREATE TABLE sent_items (
        item_id TEXT PRIMARY KEY,
        issue TEXT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the database; WAL so readers never block the sender."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        raise NewsletterError(f"database: {exc}", where=str(path)) from exc
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NewsletterError(f"database schema {version} is newer than this program "
                              f"({SCHEMA_VERSION}); upgrade newsletter", where=str(path))
    for target in range(version, SCHEMA_VERSION):
        with transaction(conn):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: writers queue on the lock instead of failing mid-way."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_feed_cache(conn: sqlite3.Connection, url: str) -> CachedFeed | None:
    row = conn.execute("SELECT etag, last_modified, body FROM feed_cache WHERE url = ?",
                       (url,)).fetchone()
    return CachedFeed(row["etag"], row["last_modified"], row["body"]) if row else None


def put_feed_cache(conn: sqlite3.Connection, url: str, etag: str | None,
                   last_modified: str | None, body: bytes) -> None:
    conn.execute(
        "INSERT INTO feed_cache (url, etag, last_modified, body, fetched_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
        "last_modified = excluded.last_modified, body = excluded.body, "
        "fetched_at = excluded.fetched_at",
        (url, etag, last_modified, body, now_iso()))


def sent_item_ids(conn: sqlite3.Connection, before_issue: str) -> set[str]:
    """Feed item ids (and normalised links) that went out in an earlier issue."""
    return {r[0] for r in conn.execute("SELECT item_id FROM sent_items WHERE issue < ?",
                                       (before_issue,))}


def record_sent_items(conn: sqlite3.Connection, issue: str, item_ids: list[str]) -> None:
    conn.executemany("INSERT OR IGNORE INTO sent_items (item_id, issue) VALUES (?, ?)",
                     [(i, issue) for i in item_ids])
