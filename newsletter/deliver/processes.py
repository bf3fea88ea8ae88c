"""Sender processes: one run's deliver stage over P forked processes, each running its share
of `[delivery] connections` as threads (workers.run_deliveries) with its own database
connections and ledger owner (ledger.OWNER is re-derived in a child), so that message
assembly and DKIM use every core, not one interpreter lock. Still one run: the parent holds
the lock, planned and froze before the fork, and sums the children's counts into one Tally;
the rate limit and the policy stop are the list's already (shared_rate: a database row).

Fork, not spawn: a child gets the run as built (prepared editions, the DKIM key, closures)
for nothing. Only a single-threaded process forks (no lock can be held by a thread the
child lacks); one with threads (a test server in-process) delivers with threads as before.
A child never touches the parent's database handle, collects none of its objects
(gc.freeze) and leaves by os._exit; it dies with the parent (PR_SET_PDEATHSIG).

Stops: SIGTERM or a first Ctrl-C to the parent is forwarded as SIGTERM (messages in flight
finish and are recorded); a child's own stop (relay gone, database failing) stops the
others alike; a child that dies stops the run with one line, and its rows in flight become
`unknown` on the next run (process identity; on PostgreSQL also the lease), never resent.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import mmap
import os
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from newsletter.deliver.stop_signals import stop_on_signals
from newsletter.deliver.workers import Tally
from newsletter.errors import DeliveryError

FIELDS = ("sent", "deferred", "failed", "unknown", "skipped")
_SLOT = struct.Struct(f"{len(FIELDS)}q")
_PR_SET_PDEATHSIG = 1  # prctl(2), Linux


@dataclass(frozen=True)
class Share:
    """One process's part of the deliver stage: its connections; `ready`, once they are open:
    claim or not (another process could not connect, or the run stopped); `on_progress`."""

    connections: int
    ready: Callable[[], bool] = lambda: True
    on_progress: Callable[[Tally], None] = lambda t: None

    def open(self, make: Callable[[], Any]) -> list[Any] | None:
        """This share's transports, all open (an auth or TLS failure raises), or None if
        `ready` says not to claim; closed unless returned."""
        pool, go = [make() for _ in range(self.connections)], False
        try:
            for transport in pool:
                transport.open()
            go = self.ready()
        finally:
            for transport in pool if not go else ():
                transport.close()
        return pool if go else None


RunShare = Callable[[Share], Tally]


def process_count(setting: int, connections: int) -> int:
    """[delivery] processes (0: "auto", one per core we may use), at most `connections`;
    1 where forking is not safe (threads running) or there is no PR_SET_PDEATHSIG."""
    if threading.active_count() > 1 or not sys.platform.startswith("linux"):
        return 1
    return max(1, min(setting or len(os.sched_getaffinity(0)), connections))


def split(connections: int, processes: int) -> list[int]:
    """The connections per process, as even as they go (5 over 2: 3 and 2)."""
    return [connections // processes + (k < connections % processes) for k in range(processes)]


def deliver(setting: int, connections: int, run_share: RunShare,
            on_progress: Callable[[Tally], None]) -> Tally:
    """Run the deliver stage in process_count() processes; the run's Tally, summed."""
    count = process_count(setting, connections)
    if count == 1:
        return run_share(Share(connections, on_progress=on_progress))
    counts = mmap.mmap(-1, _SLOT.size * count)  # shared with the children (MAP_SHARED)
    children = [_fork(k, n, run_share, counts) for k, n in enumerate(split(connections, count))]
    tally = Tally()
    try:
        with stop_on_signals(tally):
            _supervise(children, tally, counts, on_progress)
    finally:
        for child in children:  # an exception here (a second Ctrl-C): they finish politely
            child.signal(signal.SIGTERM)
            child.reap(block=True)
        _sum(tally, counts, len(children))
    on_progress(tally)
    return tally


@dataclass
class _Child:
    pid: int
    up: int  # the child's lines to the parent: R (ready), S<reason>, E<error>, D (done)
    down: int  # the parent's one byte to the child: g (claim) or s (stop)
    buffer: bytes = b""
    ready: bool = False
    done: bool = False
    reason: str = ""
    error: str = ""
    status: int | None = None  # os.waitpid's, once reaped

    def read(self) -> None:
        with contextlib.suppress(OSError):
            self.buffer += os.read(self.up, 65536)
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            kind, text = line[:1], line[1:].decode("utf-8", "replace")
            self.ready = self.ready or kind == b"R"
            self.done = self.done or kind == b"D"
            self.reason = self.reason or (text if kind == b"S" else "")
            self.error = self.error or (text if kind == b"E" else "")

    def tell(self, byte: bytes) -> None:
        if self.status is None:  # reaped: its pipe is closed, and the number maybe reused
            with contextlib.suppress(OSError):
                os.write(self.down, byte)

    def signal(self, signum: int) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def reap(self, *, block: bool = False) -> bool:
        """True once the child has exited (its last lines read)."""
        if self.status is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid:
                self.status = status
                self.read()
                os.close(self.up)
                os.close(self.down)
        return self.status is not None

    def death(self) -> str:
        """Why the run must stop if this child ended without finishing ("" if it finished)."""
        if self.status is None or self.done:
            return ""
        how = (f"killed by {signal.Signals(os.WTERMSIG(self.status)).name}"
               if os.WIFSIGNALED(self.status) else f"exit {os.waitstatus_to_exitcode(self.status)}")
        return (f"a sender process (PID {self.pid}) died ({how}); the run stopped (its messages "
                "in flight become `unknown` on the next run, never resent)")


def _supervise(children: list[_Child], tally: Tally, counts: mmap.mmap,
               on_progress: Callable[[Tally], None]) -> None:
    """Start the children together once all opened their connections, then follow them."""
    told = went = stopped = False
    while not all(c.reap() for c in children):
        ready = select.select([c.up for c in children if c.status is None], [], [], 0.2)[0]
        for child in children:
            if child.up in ready:
                child.read()
        reason = (tally.stop_reason or next((c.error or c.death() for c in children
                                             if c.error or c.death()), "")
                  or next((c.reason for c in children if c.reason), ""))
        if not told and (reason or all(c.ready for c in children)):
            told, went = True, not reason  # the barrier: every process claims, or none does
            for child in children:
                child.tell(b"g" if went else b"s")
        if reason and not stopped:
            stopped = True
            tally.stop(reason)
            for child in children if went else ():  # before "g" they hold nothing
                child.signal(signal.SIGTERM)
        _sum(tally, counts, len(children))
        on_progress(tally)
    errors = [c.error for c in children if c.error]
    if errors and not went:
        raise DeliveryError(errors[0])  # as a connection that cannot open stops a 1-process run


def _sum(tally: Tally, counts: mmap.mmap, processes: int) -> None:
    rows = [_SLOT.unpack_from(counts, k * _SLOT.size) for k in range(processes)]
    for n, name in enumerate(FIELDS):
        setattr(tally, name, sum(row[n] for row in rows))


def _fork(index: int, connections: int, run_share: RunShare, counts: mmap.mmap) -> _Child:
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        gc.freeze()  # the parent's objects are never collected here: no finaliser of theirs runs
        os.close(up_r)
        os.close(down_w)
        _child(parent, index, connections, run_share, counts, up_w, down_r)
    os.close(up_w)
    os.close(down_r)
    return _Child(pid, up_r, down_w)


def _child(parent: int, index: int, connections: int, run_share: RunShare,  # noqa: PLR0913
           counts: mmap.mmap, up: int, down: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until stop_on_signals: die, nothing held
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    told: list[str] = []

    def line(kind: str, text: str = "") -> None:
        with contextlib.suppress(OSError):
            os.write(up, (kind + text.replace("\n", " ")[:1000] + "\n").encode())

    def publish(tally: Tally) -> None:
        _SLOT.pack_into(counts, index * _SLOT.size, *(getattr(tally, f) for f in FIELDS))
        if tally.stop_reason and not told:  # the others stop too, as threads of one run do
            told.append(tally.stop_reason)
            line("S", tally.stop_reason)

    def ready() -> bool:
        line("R")
        return os.read(down, 1) == b"g"  # b"": the parent is gone (and so are we, soon)

    try:
        _die_with(parent)
        tally = run_share(Share(connections, ready, publish))
        publish(tally)
        line("D")
        code = 0
    except DeliveryError as exc:
        line("E", str(exc))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        line("E", f"a sender process failed: {type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """SIGKILL this child when the parent dies: a run killed outright stops outright, as its
    threads would, and no child sends on without the lock and the parent's database handle."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)
