"""`newsletter bounces PATH`: read a mailbox of bounces and complaints, print what changed."""

from __future__ import annotations

import argparse
import json
import sys
import time

from newsletter.audience.bounces import process_reports
from newsletter.audience.dsn import Report
from newsletter.audience.mailboxes import open_source
from newsletter.cli.context import config_of, open_store
from newsletter.cli.output import say, warn


def cmd_bounces(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = config_of(args)
    as_json = getattr(args, "json", False)
    # A bad PATH or URL fails before the database opens; a dry run opens IMAP read-only.
    source = open_source(args.path, move_to=config.imap_move_to, read_only=args.dry_run)
    with source, open_store(config) as conn:
        run = process_reports(conn, source.messages(), config, dry_run=args.dry_run,
                              on_warning=warn, on_done=source.mark_done,
                              on_report=_print_json if as_json else None)
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


def _print_json(label: str, report: Report, actions: tuple[str, ...]) -> None:
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
