"""Bounces and complaints: read DSNs, other bounces and ARF reports; suppress those addresses."""

from __future__ import annotations

import argparse
import email
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from newsletter import store
from newsletter.cli import config_of, open_store
from newsletter.config import Config
from newsletter.dsn import Report, classify, report_key
from newsletter.mailboxes import open_source, read_mailbox  # noqa: F401 (moved there)
from newsletter.tokens import verification_secrets, verify_token

_FINAL = ("unsubscribed", "bounced", "complained")  # never downgraded or re-activated


@dataclass(frozen=True)
class Change:
    email: str
    status: str  # bounced | complained
    why: str


@dataclass
class BounceRun:
    """The tally of one run, filled in as reports are processed."""

    read: int = 0
    new: int = 0
    already: int = 0
    bounced: int = 0
    complained: int = 0
    soft: int = 0
    ignored: int = 0
    changes: list[Change] = field(default_factory=list)

    def summary(self, seconds: float, *, dry_run: bool = False) -> str:
        head = "bounces (dry run, nothing changed)" if dry_run else "bounces"
        return (f"{head}: {self.read} report(s) read, {self.new} new, {self.already} already "
                f"processed; {self.bounced} bounced, {self.complained} complained, "
                f"{self.soft} soft recorded, {self.ignored} ignored in {seconds:.1f} s")


# --- effects: one transaction per report ---------------------------------------------------

def process_reports(conn: sqlite3.Connection, messages: Iterable[tuple[str, bytes]],
                    config: Config, *, now: datetime | None = None, dry_run: bool = False,
                    on_warning: Callable[[str], None] = lambda line: None,
                    on_done: Callable[[str], None] = lambda label: None) -> BounceRun:
    """Classify each new report and apply it with its processed_reports row, atomically;
    on_done(label) once that is committed (or the report was known), not in a dry run."""
    now = now or datetime.now(UTC)
    read_token = partial(verify_token, verification_secrets(now), config.list_id)
    run = BounceRun()
    with _rolled_back(conn) if dry_run else nullcontext():
        for label, raw in messages:
            run.read += 1
            message = email.message_from_bytes(raw)
            key = report_key(message, raw)
            with _step(conn, dry_run):
                if conn.execute("SELECT 1 FROM processed_reports WHERE report_key = ?",
                                (key,)).fetchone():
                    run.already += 1
                else:
                    run.new += 1
                    report = classify(message, read_token=read_token)
                    if report.kind == "unparseable":
                        on_warning(f"{label}: cannot read it ({report.detail}); "
                                   "recorded as ignored")
                    _record(conn, key, report, config, now, run)
            if not dry_run:
                on_done(label)
    return run


def _step(conn: sqlite3.Connection, dry_run: bool) -> AbstractContextManager:
    return nullcontext() if dry_run else store.transaction(conn)


@contextmanager
def _rolled_back(conn: sqlite3.Connection) -> Iterator[None]:
    """--dry-run: do everything in one transaction and roll it back, so the tally is exact."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def _record(conn: sqlite3.Connection, key: str, report: Report, config: Config,
            now: datetime, run: BounceRun) -> None:
    if report.kind in ("ignored", "unparseable"):
        run.ignored += 1
        outcome = "ignored: " + ("unparseable" if report.kind == "unparseable" else report.detail)
    else:
        notes = [_apply(conn, key, address, report, config, now, run)
                 for address in report.addresses]
        outcome = f"{report.kind}: " + ", ".join(notes)
    conn.execute("INSERT INTO processed_reports (report_key, processed_at, outcome) "
                 "VALUES (?, ?, ?)", (key, _stamp(now), outcome[:1000]))


def _apply(conn: sqlite3.Connection, key: str, address: str, report: Report, config: Config,
           now: datetime, run: BounceRun) -> str:
    """One address's bounce event and status change; returns its note for the outcome."""
    sub = store.get_subscriber(conn, address)  # the column is COLLATE NOCASE
    if sub is None:
        return f"{address} (not a subscriber)"
    conn.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES (?, ?, ?, ?)",
                 (sub.email, report.kind, key, _stamp(now)))
    run.soft += report.kind == "soft"
    if sub.status in _FINAL:
        return f"{sub.email} (already {sub.status})"
    date = now.astimezone(config.timezone).date().isoformat()
    days, limit = config.soft_bounce_window_days, config.soft_bounce_limit
    if report.kind == "soft":
        count = _recent_soft(conn, sub.email, now, days)
        if count < limit:
            return f"{sub.email} ({count} of {limit} in {days} days)"
        why = reason = f"{count} soft bounces in {days} days"
    else:
        label = "hard bounce" if report.kind == "hard" else "complaint"
        why, reason = f"{label}: {report.detail}", f"{label} {date}: {report.detail}"
    status = "complained" if report.kind == "complaint" else "bounced"
    conn.execute("UPDATE subscribers SET status = ?, reason = ?, updated_at = ? WHERE email = ?",
                 (status, reason, _stamp(now), sub.email))
    run.changes.append(Change(sub.email, status, why))
    run.bounced += status == "bounced"
    run.complained += status == "complained"
    return f"{sub.email} ({status})"


def _recent_soft(conn: sqlite3.Connection, address: str, now: datetime, days: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM bounce_events WHERE email = ? AND kind = 'soft' "
        "AND at > ? AND at <= ?",
        (address, _stamp(now - timedelta(days=days)), _stamp(now))).fetchone()[0]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")  # as store.now_iso()


# --- the command -----------------------------------------------------------------------------

def cmd_bounces(args: argparse.Namespace) -> int:
    from newsletter.commands import say, warn  # commands imports this module to register it

    started = time.monotonic()
    config = config_of(args)
    # A bad PATH or URL fails before the database opens; a dry run opens IMAP read-only.
    source = open_source(args.path, move_to=config.imap_move_to, read_only=args.dry_run)
    with source, open_store(config) as conn:
        run = process_reports(conn, source.messages(), config, dry_run=args.dry_run,
                              on_warning=warn, on_done=source.mark_done)
    for change in run.changes:
        say(f"{change.status}  {change.email}  {change.why}")
    say(run.summary(time.monotonic() - started, dry_run=args.dry_run))
    return 0


def add_bounces_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("path", metavar="PATH",
                     help="a Maildir (folder with cur/, new/, tmp/), an mbox file, a folder "
                          "of .eml files, or imaps://USER@HOST/MAILBOX (password in "
                          "NEWSLETTER_IMAP_PASSWORD)")
    cmd.add_argument("--dry-run", action="store_true",
                     help="report what would change; change nothing")
