"""SQL of the send gate: one row (send_gate, id 1) that every sender of the list shares, so
that `[delivery] rate_per_second` and the policy stop hold for the whole list, whatever the
number of processes and hosts (deliver/shared_rate.py uses it).

Times here are the database's own clock, in seconds since the epoch (PostgreSQL's
clock_timestamp(), SQLite's 'now': on one machine, the machine's clock), never
a host's: hosts' clocks differ (NTP keeps them within milliseconds, not better, and a host
without it drifts), and a slot read on one host and waited for on another must mean the same
instant. A caller turns a slot into a local wait as (slot - the database's now), a duration.

One row for the list: on PostgreSQL its row lock orders the hosts' reservations (each one
short UPDATE), on SQLite the write lock does.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.store.db import Db, Row

# The database's time as epoch seconds (a float), per engine.
# (SQLite: whole seconds plus the milliseconds of %f; julianday's double would lose ~40 us.)
_NOW = {"sqlite": "(CAST(strftime('%s', 'now') AS REAL) + CAST(strftime('%f', 'now') AS REAL)"
                  " - CAST(strftime('%S', 'now') AS REAL))",
        "postgresql": "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"}
_GREATEST = {"sqlite": "max", "postgresql": "greatest"}
# A next slot further ahead than this is taken for a database clock stepped back (NTP), not
# for a queue of senders (that is a block per sender, well under a second): start again now.
HORIZON = 30.0


@dataclass(frozen=True)
class Slots:
    """A block of send slots reserved for one sender: `count` instants `interval` apart from
    `first`, and the database's time when they were reserved (same clock)."""

    first: float
    count: int
    interval: float
    now: float

    @property
    def end(self) -> float:
        """The list's next free slot after this block (its value in the row)."""
        return self.first + self.count * self.interval

    @property
    def lead(self) -> float:
        """Seconds from the reservation to the first slot (0: at once)."""
        return max(0.0, self.first - self.now)


@dataclass(frozen=True)
class GateState:
    """The list's shared policy streak and its last recorded stop (none: stopped_at None)."""

    streak: int
    stop_reason: str
    stop_host: str
    stopped_at: float | None


def start_run(db: Db) -> float:
    """The database's time (epoch seconds) as a run starts: the stops it must obey are the
    ones recorded after it. Makes the list's row on first use (no migration seeds it, so
    an unused database stays empty, as `db migrate-to` wants its target)."""
    with db.transaction(immediate=False):
        _make_row(db)
        return float(db.one(f"SELECT {_NOW[db.engine]}")[0])


def _make_row(db: Db) -> None:
    db.execute("INSERT INTO send_gate (id, next_slot, streak, stop_reason, stop_host) "
               "VALUES (1, 0, 0, '', '') ON CONFLICT (id) DO NOTHING")


def reserve(db: Db, count: int, interval: float) -> Slots:
    """Take the next `count` slots, `interval` apart, in one short transaction: from the
    list's next free slot, or from now if that is past (an idle list saves no slots up)."""
    now, greatest = _NOW[db.engine], _GREATEST[db.engine]
    span = count * interval
    sql = (f"UPDATE send_gate SET next_slot = CASE WHEN next_slot > {now} + ? THEN {now} "
           f"ELSE {greatest}(next_slot, {now}) END + ? WHERE id = 1 RETURNING next_slot, {now}")
    with db.transaction(immediate=False):  # the row's own lock (SQLite: its write lock)
        row = db.one(sql, (HORIZON, span))
        if row is None:  # the list's first reservation
            _make_row(db)
            row = db.one(sql, (HORIZON, span))
    return Slots(float(row[0]) - span, count, interval, float(row[1]))


def release(db: Db, first_unused: float, end: float) -> bool:
    """A sender that stops hands back the unused rest of its block, from `first_unused` to
    `end` (its Slots' end), if no one reserved after it: the next sender need not wait."""
    with db.transaction(immediate=False):
        return db.execute("UPDATE send_gate SET next_slot = ? WHERE id = 1 AND next_slot = ?",
                          (first_unused, end)).rowcount == 1


# The row's streak and stop, read by its key: alone (state) or in a claim's transaction.
STATE = "SELECT streak, stop_reason, stop_host, stopped_at FROM send_gate WHERE id = 1"


def state(db: Db) -> GateState:
    """The shared streak and stop: one read of one row by its key (a claim's cheap check)."""
    return state_of(db.one(STATE))


def state_of(row: Row | None) -> GateState:
    """GateState from STATE's row (None: no run has started on this database yet)."""
    if row is None:
        return GateState(0, "", "", None)
    return GateState(int(row[0]), row[1], row[2],
                     None if row[3] is None else float(row[3]))


def add_policy(db: Db) -> int:
    """One more policy rejection (5.7.x) in the list's streak; returns the streak."""
    with db.transaction(immediate=False):
        return int(db.one(f"UPDATE send_gate SET streak = streak + 1, streak_at = "
                          f"{_NOW[db.engine]} WHERE id = 1 RETURNING streak")[0])


def reset_streak(db: Db, began: float) -> int:
    """A message the relay took (or refused for the reader's own reasons) ends the streak,
    if it began (database time) after the streak last grew: a message in flight while the
    relay turned against the list says nothing about it now. Returns the streak."""
    with db.transaction(immediate=False):
        db.execute("UPDATE send_gate SET streak = 0 WHERE id = 1 AND streak <> 0 AND "
                   "(streak_at IS NULL OR streak_at < ?)", (began,))
        row = db.one("SELECT streak FROM send_gate WHERE id = 1")
    return int(row[0]) if row else 0


def record_stop(db: Db, reason: str, host: str) -> GateState:
    """Stop every run of the list running now (their next claim reads it). The
    streak starts again from 0: the next run, after the operator looked, starts fresh."""
    with db.transaction(immediate=False):
        row = db.one(f"UPDATE send_gate SET stop_reason = ?, stop_host = ?, streak = 0, "
                     f"stopped_at = {_NOW[db.engine]} WHERE id = 1 RETURNING stopped_at",
                     (reason[:500], host[:200]))
    return GateState(0, reason[:500], host[:200], float(row[0]))
