"""The delivery workers: a pool that claims ledger rows, sends, and records each outcome.

Each worker claims its next batch of due rows (committed) before their SMTP transactions and
records the batch's outcomes with its next claim, one commit a batch; workers share only the
tally, the clock and the rate limit (the store keeps their claims apart).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from newsletter.audience.return_address import ReturnPaths
from newsletter.compose.message import Envelope, Prepared
from newsletter.deliver import ledger
from newsletter.deliver.attempts import POLICY_STREAK, RETRIES_PER_RUN, one_by_one, pipelines
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.leases import renewing
from newsletter.deliver.pipelined import Pipeline
from newsletter.model import Delivery, Settle
from newsletter.store import claims as store_claims
from newsletter.store.connect import open_store
from newsletter.store.db import Db, StoreError
from newsletter.store.send_gate import GateState

__all__ = ["POLICY_STREAK", "RETRIES_PER_RUN", "Clock", "Job", "RateLimiter", "Tally",
           "batch_for", "deliver", "run_deliveries"]


@dataclass
class Tally:
    """Counts shared by the workers; the summary line and the progress bar read them."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    policy_streak: int = 0
    stop_reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.unknown + self.skipped

    def add(self, kind: str, *, policy: bool = False, began: float = 0.0) -> bool:
        """Count an outcome (of an attempt begun at `began`, time.monotonic(); GateTally
        uses it); True once 5.7.x replies in a row say the run must stop."""
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if kind != "skipped":  # a suppressed row says nothing about the relay's mood
                self.policy_streak = self.policy_streak + 1 if policy else 0
            return self.policy_streak >= POLICY_STREAK

    def stop(self, reason: str) -> None:
        with self.lock:
            self.stop_reason = self.stop_reason or reason

    def may_claim(self, conn: Db) -> bool:
        """No stop yet (shared_rate.GateTally also reads another sender's from the database)."""
        return not self.stop_reason

    @property
    def reads_gate(self) -> bool:
        """Whether claims should bring the list's send gate along (GateTally.saw reads it)."""
        return False

    def saw(self, gate: GateState | None) -> None:
        """The send gate as a claim read it (GateTally: another sender's stop stops this run
        before the batch is sent; its rows go back as pending)."""

    def may_send(self) -> bool:
        """Before each message of a batch: no stop yet (GateTally: as may_claim, while a
        policy streak runs)."""
        return not self.stop_reason

    def may_pipeline(self) -> bool:
        """May a message's envelope go before the outcome of the one before is known? Only
        while no stop and no policy streak is known (GateTally: the list's streak too)."""
        return not self.stop_reason and not self.policy_streak


class Clock:
    """The run's clock: --now plus the time elapsed since the run began (or the real time)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.began = start, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


class RateLimiter:
    """At most `rate` messages in any one-second window, shared by all workers."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(self.next, now)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class Job:
    """What the workers need, read-only."""

    db_path: Path | str  # each worker opens its own handle: a file or a database URL
    prepared: dict[tuple[str, str, str], Prepared]  # (issue, language, variant) -> encoded once
    envelope: Envelope
    unsubscribe_url: Callable[[str], str]
    clock: Clock
    limiter: RateLimiter
    tally: Tally
    signer: DkimSigner | None = None
    return_paths: ReturnPaths | None = None  # None: the envelope's sender and mailto for all
    transport_label: str = ""  # recorded on each claimed row (transport_choice.TransportChoice)
    lease: timedelta | None = None  # how long a claim holds unrenewed ([delivery] lease_seconds)
    batch_size: int = 1  # rows a claim takes ([delivery] batch_size; see batch_for)
    # (unsubscribe URL, mailto) of a reader from one token (send.reader_links); None: each
    # from unsubscribe_url and return_paths.mailto
    links: Callable[[str], tuple[str, str]] | None = None


def batch_for(batch_size: int, due: int, connections: int) -> int:
    """A claim's size: [delivery] batch_size, but no more than each connection's share of
    the rows due, so a short list still keeps every connection busy."""
    return max(1, min(batch_size, -(-due // max(1, connections))))


def deliver(job: Job, keys: Sequence[str], due_by: datetime,
            transport) -> None:  # noqa: ANN001
    """One worker: claim a batch of job.batch_size rows (recording the previous batch's
    outcomes in the same commit), then build and send them one by one, so a worker never
    holds more than one batch in `sending` (a crash leaves at most that many `unknown`).

    If the database cannot record (disk full, read-only, I/O error) the run stops at its next
    commit: no message is sent before its claim is committed, and the rest of the batch
    claimed before the failure is what the next run finds `sending` and marks `unknown`.
    """
    conn = open_store(job.db_path)
    done: list[Settle] = []
    try:
        for key in keys:
            done = _deliver_key(job, conn, key, due_by, transport, done)
            if job.tally.stop_reason:
                break
        if done:
            store_claims.settle_many(conn, done, job.clock.now())
    except StoreError as exc:
        # conn.where: the URL as messages show it, without a password in any part of it
        job.tally.stop(f"database {conn.where}: {exc.detail}; stopped before the next batch "
                       "(rows left `sending` become `unknown` on the next run)")
    finally:
        transport.close()
        conn.close()


def _deliver_key(job: Job, conn: Db, key: str, due_by: datetime, transport,  # noqa: ANN001
                 done: list[Settle]) -> list[Settle]:
    """The due rows of one ledger key, a batch a claim; returns the last batch's outcomes,
    not yet recorded (the caller's next claim or settle writes them)."""
    after = 0
    while job.tally.may_claim(conn):
        claims = store_claims.claim_due(
            conn, key, ledger.OWNER, job.clock.now(), job.batch_size, after=after,
            due_by=due_by, settle_first=done, transport=job.transport_label, lease=job.lease,
            gate=job.tally.reads_gate)
        job.tally.saw(claims.gate)
        done, after = [], claims.last
        for _ in range(claims.suppressed):
            job.tally.add("skipped")
        if claims.exhausted:
            break
        done = _send_batch(job, transport, claims.deliveries)
    return done


def _send_batch(job: Job, transport, deliveries: Sequence[Delivery]  # noqa: ANN001
                ) -> list[Settle]:
    if pipelines(job, transport):
        return Pipeline(job, transport, deliveries).run()
    return one_by_one(job, transport, deliveries)


def run_deliveries(job: Job, issues: list[str], transports: list, *,  # noqa: ANN001
                   on_progress: Callable[[Tally], None] = lambda t: None) -> None:
    """One worker per transport, each claiming the rows due now (at the run's start) in
    issue and subscriber order, until none is left or a worker stops the run."""
    due_by = job.clock.now()
    workers = [threading.Thread(target=deliver, args=(job, issues, due_by, t), daemon=True,
                                name=f"sender-{n}") for n, t in enumerate(transports)]
    for w in workers:
        w.start()
    try:
        with renewing(job.db_path, job.clock.now, job.lease):
            while any(w.is_alive() for w in workers):
                on_progress(job.tally)
                for w in workers:
                    w.join(timeout=0.2)
    except BaseException:  # a second Ctrl-C: the messages in flight finish and are recorded
        job.tally.stop("interrupted")
        for w in workers:
            w.join()
        raise
    on_progress(job.tally)
