"""What the database holds, asked of each engine's own catalog: the tables, the foreign keys
onto a table, the text columns, and a key for any row. Forgetting a reader (store/forget.py)
walks every table this way, so a table a later migration adds is covered without a list."""

from __future__ import annotations

from newsletter.store.db import Db


def tables(db: Db) -> list[str]:
    if db.engine == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = "
               "current_schema() AND table_type = 'BASE TABLE' AND table_name != "
               "'schema_version'")
    return sorted(r[0] for r in db.execute(sql))


def references_to(db: Db, target: str) -> list[tuple[str, str]]:
    """(table, column) of every foreign key onto target."""
    if db.engine == "sqlite":
        return [(t, fk[3]) for t in tables(db) if t != target
                for fk in db.execute(f"PRAGMA foreign_key_list({t})") if fk[2] == target]
    return [(r[0], r[1]) for r in db.execute(
        "SELECT k.table_name, k.column_name FROM information_schema.referential_constraints c "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
        "AND k.constraint_schema = c.constraint_schema "
        "JOIN information_schema.constraint_column_usage u ON u.constraint_name = "
        "c.unique_constraint_name AND u.constraint_schema = c.unique_constraint_schema "
        "WHERE k.table_schema = current_schema() AND u.table_name = ? AND k.table_name != ? "
        "ORDER BY k.table_name", (target, target))]


def text_columns(db: Db, table: str) -> list[str]:
    """Columns that may hold text. SQLite's columns take any type, so each value's type is
    checked again where it is read (text_test)."""
    if db.engine == "sqlite":
        return [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
    return [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ? AND (data_type IN ('text', 'character varying') "
        "OR udt_name = 'citext') ORDER BY ordinal_position", (table,))]


def text_test(db: Db, column: str) -> str:
    """A condition true where the (quoted) column's value is text."""
    return f"typeof({column}) = 'text'" if db.engine == "sqlite" else f"{column} IS NOT NULL"


def row_key(db: Db) -> str:
    """A column naming one row of any table for an UPDATE in the same transaction: SQLite's
    rowid, PostgreSQL's ctid (the row version's place; the write lock is held meanwhile)."""
    return "rowid" if db.engine == "sqlite" else "ctid"


def wipe_freed_space(db: Db) -> None:
    """SQLite overwrites freed cells with zeros (secure_delete), so a deleted address does
    not linger in free pages of the file. PostgreSQL has no such switch: deleted rows stay
    in the table until VACUUM reuses their space (autovacuum), as in its write-ahead log."""
    if db.engine == "sqlite":
        db.execute("PRAGMA secure_delete = ON")


def truncate_log(db: Db) -> None:
    """SQLite: checkpoint the WAL and truncate it, so the old pages leave the -wal file."""
    if db.engine == "sqlite":
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def column_types(db: Db, table: str) -> dict[str, str]:
    """Each column's declared type, lower case, in table order: SQLite's declaration
    ('integer', 'text', 'blob'), PostgreSQL's type name ('bigint', 'text', 'citext', 'bytea')."""
    if db.engine == "sqlite":
        return {c[1]: str(c[2]).lower() for c in db.execute(f"PRAGMA table_info({table})")}
    return {r[0]: r[1] for r in db.execute(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))}


def primary_key(db: Db, table: str) -> list[str]:
    """The primary key's columns (SQLite: a rowid table without one is named by rowid)."""
    if db.engine == "sqlite":
        keyed = sorted((c[5], c[1]) for c in db.execute(f"PRAGMA table_info({table})") if c[5])
        return [name for _, name in keyed] or ["rowid"]
    return [r[0] for r in db.execute(
        "SELECT k.column_name FROM information_schema.table_constraints c JOIN "
        "information_schema.key_column_usage k ON k.constraint_name = c.constraint_name AND "
        "k.constraint_schema = c.constraint_schema WHERE c.table_schema = current_schema() "
        "AND c.table_name = ? AND c.constraint_type = 'PRIMARY KEY' ORDER BY "
        "k.ordinal_position", (table,))]


def identity_columns(db: Db, table: str) -> list[str]:
    """PostgreSQL's identity columns (ids the server numbers); SQLite's rowids need none."""
    if db.engine == "sqlite":
        return []
    return [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ? AND is_identity = 'YES'", (table,))]
