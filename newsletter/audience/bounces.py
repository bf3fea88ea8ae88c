"""Bounces and complaints: classify each report per recipient, apply it to the subscribers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message
from functools import partial

from newsletter.audience.bounce_report import FAILED
from newsletter.audience.dsn import Report, classify, parse_report, report_key
from newsletter.audience.mailboxes import open_source, read_mailbox  # noqa: F401 (moved there)
from newsletter.audience.suppression import BounceRun, Change, apply_recipient, stamp  # noqa: F401
from newsletter.audience.text_bounces import bounce_for
from newsletter.audience.tokens import verification_secrets, verify_token
from newsletter.cli.main import config_of, open_store
from newsletter.config import Config
from newsletter.store import sqlite as store
from newsletter.store.db import Db

_IGNORED = ("auto-reply", "delivery", "other", "unparseable")


# --- effects: one transaction per report ---------------------------------------------------

def process_reports(conn: Db, messages: Iterable[tuple[str, bytes]],
                    config: Config, *, now: datetime | None = None, dry_run: bool = False,
                    on_warning: Callable[[str], None] = lambda line: None,
                    on_done: Callable[[str], None] = lambda label: None,
                    on_report: Callable[[str, Report, tuple[str, ...]], None] | None = None,
                    ) -> BounceRun:
    """Classify each new report and apply it with its processed_reports row, atomically;
    on_done(label) once that is committed (or the report was known), not in a dry run;
    on_report(label, report, actions) for each message read (--json)."""
    now = now or datetime.now(UTC)
    read_token = partial(verify_token, verification_secrets(now), config.list_id)
    run = BounceRun()
    with _rolled_back(conn) if dry_run else nullcontext():
        for label, raw in messages:
            run.read += 1
            key = report_key(raw)  # RFC 5322 allows two reports one Message-ID; bytes differ
            actions: tuple[str, ...]
            with _step(conn, dry_run):
                known = already_processed(conn, key)
                if known and on_report is None:
                    run.already += 1
                    report, actions = Report("other"), ()
                else:
                    message = parse_report(raw)
                    report = _attributed(conn, message, classify(message, read_token=read_token),
                                         config, now)
                    if known:
                        run.already += 1
                        actions = tuple("none" for _ in report.recipients)
                    else:
                        run.new += 1
                        if report.kind == "unparseable":
                            on_warning(f"{label}: cannot read it ({report.detail}); "
                                       "recorded as ignored")
                        actions = record_report(conn, key, report, config, now, run, label)
            if on_report is not None:
                on_report(label, report, actions)
            if not dry_run:
                on_done(label)
    return run


def already_processed(conn: Db, key: str) -> bool:
    return conn.execute("SELECT 1 FROM processed_reports WHERE report_key = ?",
                        (key,)).fetchone() is not None


def _step(conn: Db, dry_run: bool) -> AbstractContextManager:
    return nullcontext() if dry_run else store.transaction(conn)


@contextmanager
def _rolled_back(conn: Db) -> Iterator[None]:
    """--dry-run: do everything in one transaction and roll it back, so the tally is exact."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def _attributed(conn: Db, message: Message, report: Report, config: Config,
                now: datetime) -> Report:
    """A report sent to our VERP address bounces+TOKEN@ is about the token's subscriber,
    whatever address a forwarding or rewriting MTA put in it."""
    try:
        from newsletter.audience.return_address import addressed_token, verp_subscriber_id
    except ImportError:
        return report
    token = addressed_token(message, config)
    if not token or token[0] != "verp" or report.kind not in ("bounce", "other"):
        return report
    sub_id = verp_subscriber_id(token[1], verification_secrets(now), config.list_id)
    sub = store.get_subscriber_by_id(conn, sub_id) if sub_id is not None else None
    if sub is None or any(r.address == sub.email.lower() for r in report.recipients):
        return report
    failed = [r for r in report.recipients if r.klass in FAILED]
    if failed:
        return replace(report, recipients=(replace(failed[0], address=sub.email.lower()),))
    # A bounce that names no address at all: its text is about the one VERP recipient.
    return bounce_for(message, sub.email.lower()) or report


def record_report(conn: Db, key: str, report: Report, config: Config,
                  now: datetime, run: BounceRun, label: str) -> tuple[str, ...]:
    """Apply one classified report and record its key, inside the caller's transaction.

    Returns each recipient's action: suppressed, soft-recorded, reported or none.
    """
    if report.kind in _IGNORED or not report.recipients:
        run.ignored += 1
        actions = tuple("none" for _ in report.recipients)
        outcome = f"ignored ({report.kind}): {report.detail}"
    else:
        notes = [apply_recipient(conn, key, r, report, config, now, run)
                 for r in report.recipients]
        actions = tuple(action for action, _ in notes)
        outcome = f"{report.kind}: " + ", ".join(note for _, note in notes)
    conn.execute("INSERT INTO processed_reports (report_key, processed_at, outcome) "
                 "VALUES (?, ?, ?)", (key, stamp(now), f"{outcome} [{label}]"[:1000]))
    return actions


# --- the command -----------------------------------------------------------------------------

def cmd_bounces(args: argparse.Namespace) -> int:
    from newsletter.cli.compose_commands import (  # commands imports this module to register it
        say,
        warn,
    )

    started = time.monotonic()
    config = config_of(args)
    as_json = getattr(args, "json", False)
    # A bad PATH or URL fails before the database opens; a dry run opens IMAP read-only.
    source = open_source(args.path, move_to=config.imap_move_to, read_only=args.dry_run)
    with source, open_store(config) as conn:
        run = process_reports(conn, source.messages(), config, dry_run=args.dry_run,
                              on_warning=warn, on_done=source.mark_done,
                              on_report=partial(_print_json, say) if as_json else None)
    for change in [] if as_json else run.changes:
        say(f"{change.status}  {change.email}  {change.why}")
    summary = run.summary(time.monotonic() - started, dry_run=args.dry_run)
    if as_json:
        print(summary, file=sys.stderr, flush=True)  # stdout is one JSON object per line
    else:
        say(summary)
    return 0


def report_json(label: str, report: Report, actions: tuple[str, ...]) -> str:
    """One line of --json: the message's kind and each recipient's class and action."""
    return json.dumps({"source": label, "kind": report.kind, "recipients": [
        {"address": r.address, "class": r.klass, "status": r.status, "diagnostic": r.diagnostic,
         "reason": r.reason, "action": a}
        for r, a in zip(report.recipients, actions or ("none",) * len(report.recipients),
                        strict=False)]}, ensure_ascii=False)


def _print_json(say: Callable[[str], None], label: str, report: Report,
                actions: tuple[str, ...]) -> None:
    say(report_json(label, report, actions))


def add_bounces_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("path", metavar="PATH",
                     help="a Maildir (folder with cur/, new/, tmp/), an mbox file, a folder "
                          "of .eml files, or imaps://USER@HOST/MAILBOX (password in "
                          "NEWSLETTER_IMAP_PASSWORD)")
    cmd.add_argument("--dry-run", action="store_true",
                     help="report what would change; change nothing")
    cmd.add_argument("--json", action="store_true",
                     help="one JSON object per message read; the summary goes to stderr")
