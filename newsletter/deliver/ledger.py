"""The send ledger's rules (its SQL is store.ledger, store.claims, store.editions): who a
plain freeze queues, the retry policy for 4xx replies, and who may recover whose
claims (a claim's owner is this process, by an identity that survives PID reuse)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from newsletter.compose.edition import edition_language
from newsletter.model import Edition, Settle
from newsletter.store import claims as store_claims
from newsletter.store import ledger as store_ledger
from newsletter.store.db import Db
from newsletter.store.editions import issues_frozen_since
from newsletter.store.ledger import Freeze

RETRY_PERIOD = timedelta(hours=72)
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY_GAP = timedelta(hours=6)
LATE_WINDOW = timedelta(days=31)  # a translation ready this long after the freeze still goes
_HOUR = timedelta(hours=1)


def freeze(db: Db, editions: Edition | Sequence[Edition], item_ids: Iterable[str],
           now: datetime) -> int:
    """Freeze an issue's editions and its audience (the active subscribers now) in one
    transaction. The first edition is the default one: a subscriber
    whose language has no edition gets it, and each subscriber gets exactly one edition.
    (An issue with segments: segmenting.freeze_issue.)"""
    editions = [editions] if isinstance(editions, Edition) else list(editions)
    languages, default = {e.language.lower() for e in editions}, editions[0].language
    # Who is active is read inside the freeze's transaction, in SQL (Freeze.everyone).
    return store_ledger.freeze_issue(db, Freeze(
        editions[0].issue, tuple(editions), (),
        everyone=lambda language: edition_language(language, languages, default),
        item_ids=tuple(item_ids)), now)


def late_issues_open(db: Db, now: datetime) -> list[str]:
    """Issues frozen within the last month: a translation ready now still goes out."""
    return issues_frozen_since(db, now - LATE_WINDOW)


def resolve(outcome: Settle, now: datetime) -> Settle:
    """A deferral as the ledger records it: due again after a backoff (5 min, x3 each time,
    at most 6 h apart) until 72 h after the first 4xx; then failed. Other outcomes as they are."""
    if outcome.state != "deferred":
        return outcome
    first = outcome.delivery.first_deferred_at or now
    if now - first >= RETRY_PERIOD:
        return replace(outcome, state="failed",
                       reply=f"gave up after {RETRY_PERIOD / _HOUR:.0f} h: {outcome.reply}")
    delay = min(FIRST_RETRY * 3 ** (outcome.delivery.attempts - 1), MAX_RETRY_GAP)
    # The last attempt falls at the end of the retry period, not up to a gap after it.
    # Whole minutes: a retry due "at 16:00" must be due for a cron run at 16:00:00, not
    # half a second later (the run's clock has moved on since it started).
    retry_at = min(now + delay, first + RETRY_PERIOD).replace(second=0, microsecond=0)
    return replace(outcome, retry_at=retry_at, first_deferred_at=first)


def _identity(pid: int) -> str:
    """A process's identity that survives PID reuse: boot id and start time (from /proc);
    just the PID where /proc is missing."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command name
    except (OSError, IndexError):
        return str(pid)
    return f"{pid}:{boot}:{start}"


# NEWSLETTER_HOST names this sender where host names repeat (containers built alike; the
# cluster tests' "hosts" on one machine); the claims and the liveness check use it.
HOST = os.environ.get("NEWSLETTER_HOST", "").strip() or socket.gethostname()
OWNER = f"{HOST}:{_identity(os.getpid())}"


def _owner_after_fork() -> None:
    """A forked sender process (deliver/processes.py) claims as itself, not as its parent:
    recovery judges a claim's owner by PID and start time, so a killed child's rows must
    carry the child's identity to be found."""
    global OWNER
    OWNER = f"{HOST}:{_identity(os.getpid())}"


os.register_at_fork(after_in_child=_owner_after_fork)


def _owner_alive(owner: str | None) -> bool:
    """True if the claiming process is still running on this host (then its rows are not ours
    to recover, even when someone deleted the lock file by hand). A PID reused after a crash
    or a reboot has another start time or boot id, so it does not count as alive."""
    host, _, identity = (owner or "").partition(":")
    pid = identity.split(":", 1)[0]
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return not _zombie(int(pid)) and _identity(int(pid)) == identity


def _zombie(pid: int) -> bool:
    """A process that has exited but not been reaped answers kill(pid, 0) and keeps its /proc
    entry until its parent (for a killed sender's orphaned child, whatever init the machine
    runs, which may be slow to reap) collects it; its files and locks are closed already."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def recover_interrupted(db: Db, now: datetime) -> int:
    """Rows left `sending` by a crash: the server may have the message, so never resend blindly.

    SQLite's file has one machine's senders: an owner that is not a live process here died.
    A PostgreSQL database is shared by senders on several hosts, whose processes this host
    cannot see: their rows are recovered when their lease runs out, and only this host's own
    dead processes (same host and boot) are judged by identity, at once."""
    owners = store_claims.sending_owners(db)
    if db.engine != "sqlite":
        owners = [o for o in owners if _this_machine(o)]
    dead = [o for o in owners if not _owner_alive(o)]
    recovered = store_claims.recover_claims(db, dead, now) if dead else 0
    if db.engine != "sqlite":
        recovered += store_claims.recover_expired(db, now)
    return recovered


def _this_machine(owner: str | None) -> bool:
    """The owner ran on this host since its last boot (another machine may share a name)."""
    host, _, identity = (owner or "").partition(":")
    mine = _identity(os.getpid()).split(":")
    return host == HOST and identity.split(":")[1:2] == mine[1:2]
