"""The rate limit and the policy stop for the whole list, not per process: every sender of
the list, on any host, takes its send slots from one row of the database (store/send_gate.py)
and obeys a policy stop another sender recorded there.

Rate: a sender reserves a block of slots `1/rate` apart (one short UPDATE) and spaces its
messages on them locally. A block lasts about BLOCK_SECONDS, so each sender touches the
database a few times a second, not per message, and a killed sender wastes at most one
block. A slot missed by more than half an interval is given up rather than used late
(late, it would crowd the next sender's slots past the rate); a sender whose connections
cannot keep up with the rate reserves one slot at a time, when it is ready for it, so it
wastes none. Slots are in the database's clock; a wait is (slot - the database's now), a
duration, so hosts' clocks never enter.

Stop: see SharedStop.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.deliver import ledger
from newsletter.deliver.workers import POLICY_STREAK, RateLimiter, Tally
from newsletter.store import send_gate
from newsletter.store.connect import open_store
from newsletter.store.db import Db, StoreError
from newsletter.store.send_gate import GateState

BLOCK_SECONDS = 0.2  # a block of slots covers this long at the rate
LATE = 0.5  # of an interval: a slot missed by more is given up
_LEARN = 0.2  # weight of each new measure of the connections' pace (moving average)


class SharedRateLimiter(RateLimiter):
    """RateLimiter's wait() for the whole list: at most `rate` messages a second from every
    sender of the database together. rate 0: no limit, no database traffic."""

    def __init__(self, db_path: Path | str, rate: float) -> None:
        super().__init__(rate)  # interval and lock
        self.db_path, self.rate = db_path, rate
        self.block = max(1, math.ceil(rate * BLOCK_SECONDS)) if rate > 0 else 0
        self.slots: deque[tuple[float, float]] = deque()  # (time.monotonic(), database's)
        self.end = 0.0  # where this sender's last block ends (database clock)
        self.db: Db | None = None
        self.reservations = self.given_up = 0  # for tests and the bench
        self._busy = 0.0  # moving average: seconds a connection takes between two waits
        self._threads: set[int] = set()
        self._local = threading.local()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            self._learn(time.monotonic())
        while True:
            with self.lock:
                slot = self._take(time.monotonic())
            handed = time.monotonic()  # a slot due already (just reserved) counts from here
            if slot > handed:
                time.sleep(slot - handed)
            now = time.monotonic()
            if now - max(slot, handed) <= LATE * self.interval:
                break
            with self.lock:  # woken too late (a busy machine): this slot is gone
                self.given_up += 1
        self._local.back = now

    def close(self) -> None:
        """Hand back the block's unused slots (when no one reserved after them), close."""
        with self.lock:
            if self.db is not None:
                with contextlib.suppress(StoreError):  # then they pass unused: no harm
                    if self.slots:
                        send_gate.release(self.db, self.slots[0][1], self.end)
                self.db.close()
                self.db = None

    def _learn(self, now: float) -> None:
        """How fast this sender's connections come back for a slot once they got one."""
        self._threads.add(threading.get_ident())
        back = getattr(self._local, "back", None)
        if back is not None:
            busy = now - back
            self._busy = busy if not self._busy else self._busy + _LEARN * (busy - self._busy)

    def _keeps_up(self) -> bool:
        """Can the connections use slots one interval apart? (They are `threads` in all.)"""
        return bool(self._busy) and len(self._threads) / self._busy >= 1.2 * self.rate

    def _take(self, now: float) -> float:
        while self.slots and self.slots[0][0] < now - LATE * self.interval:
            self.slots.popleft()  # missed: sending it now would crowd the next sender's
            self.given_up += 1
        if not self.slots:
            self._reserve(self.block if self._keeps_up() else 1)
        return self.slots.popleft()[0]

    def _reserve(self, count: int) -> None:
        if self.db is None:
            self.db = open_store(self.db_path)
        before = time.monotonic()
        got = send_gate.reserve(self.db, count, self.interval)
        # The database read its clock between `before` and now: the midpoint is the best guess.
        first = (before + time.monotonic()) / 2 + got.lead
        self.slots.extend((first + n * self.interval, got.first + n * self.interval)
                          for n in range(count))
        self.end = got.end
        self.reservations += 1


class SharedStop:
    """The policy stop for the whole list. Each sender keeps its own streak of 5.7.x replies
    (workers.Tally: a host blocked on its own stops even while the others' mail goes through)
    and adds each policy reply to the list's streak, which an accepted message ends if it
    began after the streak last grew; when either reaches POLICY_STREAK the sender records
    the stop, and every other run that was running by then stops at its next claim (the
    gate is read in the claim's transaction; that batch goes back pending), or at its next
    message while a streak runs (GateTally). Runs started after it start fresh.
    The database is written only around policy replies; the check is one read by key. When
    the relay refuses every host: at most POLICY_STREAK + senders x connections - 1 refusals
    (after the fifth, one more message per other connection at most)."""

    def __init__(self, db_path: Path | str, owner: str | None = None) -> None:
        # ledger.OWNER read now, not as a default fixed at import: a forked sender process
        # has its own (ledger re-derives it at fork).
        self.owner = owner or ledger.OWNER
        self.lock = threading.Lock()
        self.db = open_store(db_path)  # the rare writes; checks use the worker's connection
        before = time.monotonic()
        self.started = send_gate.start_run(self.db)
        self._mono = (before + time.monotonic()) / 2  # when the database read self.started
        self.streak = 0  # the list's streak as last seen

    def check(self, conn: Db) -> str:
        """Why another sender stopped this run ("" if none did)."""
        return self.judge(send_gate.state(conn))

    def judge(self, seen: GateState) -> str:
        """Why the gate as read says another sender stopped this run ("" if none did)."""
        self.streak = seen.streak
        if seen.stopped_at is None or seen.stopped_at < self.started or \
                seen.stop_host == self.owner:
            return ""
        host = seen.stop_host.split(":", 1)[0]
        what = seen.stop_reason.removeprefix("stopped after ")
        return (f"stopped: host {host} had {what}" if what != seen.stop_reason
                else f"stopped: host {host}: {seen.stop_reason}")

    def outcome(self, policy: bool, began: float) -> bool:
        """Count one outcome, of a message begun at `began` (time.monotonic()), in the list's
        streak; True once it says stop."""
        with self.lock:
            if policy:
                self.streak = send_gate.add_policy(self.db)
                return self.streak >= POLICY_STREAK
            if self.streak:  # only while a streak is known to run: no write per message
                # In the database's clock (the offset measured at the start; a run is short
                # next to any drift between the two clocks).
                self.streak = send_gate.reset_streak(self.db, self.started + began - self._mono)
            return False

    def record(self, reason: str) -> None:
        with self.lock:
            send_gate.record_stop(self.db, reason, self.owner)

    def close(self) -> None:
        with self.lock, contextlib.suppress(Exception):
            self.db.close()


@dataclass
class GateTally(Tally):
    """A Tally whose policy stop is the list's (SharedStop): the workers use it unchanged."""

    gate: SharedStop | None = None
    _stopping: bool = field(default=False, repr=False)
    _conn: threading.local = field(default_factory=threading.local, repr=False)

    def add(self, kind: str, *, policy: bool = False, began: float = 0.0) -> bool:
        mine = super().add(kind, policy=policy)
        # A stopping run's last outcomes are no news to the list (its stop reset the streak).
        began = began or getattr(self._conn, "began", 0.0)  # else may_send's, on this thread
        listwide = (self.gate is not None and kind != "skipped" and not self.stop_reason
                    and self.gate.outcome(policy, began))
        if mine or listwide:
            self._stopping = True  # the stop the caller makes next is the policy stop
        return mine or listwide

    def stop(self, reason: str) -> None:
        with self.lock:
            policy, self._stopping = self._stopping, False
        if policy and self.gate is not None and not self.stop_reason:
            self.gate.record(reason)
        super().stop(reason)

    def may_claim(self, conn: Db) -> bool:
        """Before each claim: no stop yet; the claim itself reads the list's gate (saw)."""
        self._conn.db = conn  # the worker's own connection, for may_send on this thread
        return not self.stop_reason

    @property
    def reads_gate(self) -> bool:
        return self.gate is not None

    def saw(self, gate: GateState | None) -> None:
        """A stop another sender recorded, read in the claim's own transaction (no round
        trip of its own): the batch just claimed goes back as pending (may_send says no)."""
        if self.gate is not None and gate is not None and not self.stop_reason:
            self._stop_if(self.gate.judge(gate))

    def may_send(self) -> bool:
        """Before each message of a claimed batch, while a policy streak runs (this sender's
        or the list's): the same read, so a stop reaches a run mid-batch. Without a streak
        nothing is read: a sender whose mail goes through adds no rejection."""
        self._conn.began = time.monotonic()  # the attempt that follows begins (outcome)
        conn = getattr(self._conn, "db", None)
        if self.gate is not None and not self.stop_reason and conn is not None and \
                (self.policy_streak or self.gate.streak):
            self._stop_if(self.gate.check(conn))
        return not self.stop_reason

    def may_pipeline(self) -> bool:
        """As Tally's, and no streak of the list's known either (the one read may_send makes
        while one runs must come before each envelope)."""
        return super().may_pipeline() and not (self.gate is not None and self.gate.streak)

    def _stop_if(self, why: str) -> None:
        if why:
            super().stop(why)  # another sender's stop: already recorded
