"""Bounces and complaints: classify each report per recipient, apply it to the subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from email.message import Message
from functools import partial

from newsletter.audience.bounce_report import FAILED
from newsletter.audience.dsn import Report, classify, parse_report, report_key
from newsletter.audience.return_address import addressed_token, verp_subscriber_id
from newsletter.audience.suppression import BounceRun, apply_recipient, stamp
from newsletter.audience.text_bounces import bounce_for
from newsletter.audience.tokens import verification_secrets, verify_token
from newsletter.config import Config
from newsletter.store.bounces import already_processed, record_processed, rolled_back
from newsletter.store.db import Db
from newsletter.store.subscribers import get_subscriber_by_id

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
    with rolled_back(conn) if dry_run else nullcontext():
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


def _step(conn: Db, dry_run: bool) -> AbstractContextManager:
    return nullcontext() if dry_run else conn.transaction()


def _attributed(conn: Db, message: Message, report: Report, config: Config,
                now: datetime) -> Report:
    """A report sent to our VERP address bounces+TOKEN@ is about the token's subscriber,
    whatever address a forwarding or rewriting MTA put in it."""
    token = addressed_token(message, config)
    if not token or token[0] != "verp" or report.kind not in ("bounce", "other"):
        return report
    sub_id = verp_subscriber_id(token[1], verification_secrets(now), config.list_id)
    sub = get_subscriber_by_id(conn, sub_id) if sub_id is not None else None
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
    record_processed(conn, key, stamp(now), f"{outcome} [{label}]")
    return actions
