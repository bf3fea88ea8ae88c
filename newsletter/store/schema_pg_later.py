"""PostgreSQL migrations from version 3 on (schema_pg.py holds versions 1 and 2, the engine's
code, and says how the two engines' schemas are kept alike); schema_pg.MIGRATIONS lists these
after its own. Each entry takes the database one version up; never edited once released.

Every TEXT column is written COLLATE "C" here (schema_pg's _c_collated does it there)."""

LATER_MIGRATIONS: list[str] = [
    # v3: the send gate (SQLite's migration of the same name, migrations_later.py, says why;
    # DOUBLE PRECISION where SQLite says REAL)
    """
    CREATE TABLE send_gate (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next_slot DOUBLE PRECISION NOT NULL DEFAULT 0,
        streak INTEGER NOT NULL DEFAULT 0,
        stop_reason TEXT COLLATE "C" NOT NULL DEFAULT '',
        stop_host TEXT COLLATE "C" NOT NULL DEFAULT '',
        stopped_at DOUBLE PRECISION
    )
    """,
    # v4: when the send gate's streak last grew (SQLite's migration of the same name)
    "ALTER TABLE send_gate ADD COLUMN streak_at DOUBLE PRECISION",
]
