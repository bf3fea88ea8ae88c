"""The SQLite schema: its versions, in order, and the step that brings a file up to date.

PRAGMA user_version records where a file is; each entry of _MIGRATIONS takes it from
version i to i + 1 inside one transaction, so a crash mid-way leaves the previous version.
"""

from __future__ import annotations

from newsletter.errors import NewsletterError
from newsletter.store import migrations_core, migrations_later
from newsletter.store.db import Db

# A list, not a tuple: tests build old files from its first k entries.
_MIGRATIONS: list[str] = [*migrations_core.MIGRATIONS, *migrations_later.MIGRATIONS]
SCHEMA_VERSION = len(_MIGRATIONS)


def schema_version(db: Db) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: Db, where: str) -> None:
    """Apply every migration the file lacks; a file from a newer program is refused."""
    version, latest = schema_version(db), len(_MIGRATIONS)  # a test may append one
    if version > latest:
        raise NewsletterError(f"database schema {version} is newer than this program "
                              f"({latest}); upgrade newsletter", where=where)
    for target in range(version, latest):
        apply_migration(db, target)


def apply_migration(db: Db, target: int) -> None:
    """Take the file from version target to target + 1 (one transaction). The version is
    read again under the write lock: another connection opening the same file at the same
    moment (serve's request thread and its mail worker) may have applied it already, and
    applying it twice fails on its first ALTER TABLE."""
    with db.transaction():
        if schema_version(db) > target:
            return
        for statement in _MIGRATIONS[target].split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {target + 1}")
