"""`newsletter status` (the ledger as it stands) and `newsletter report ISSUE` (a sent
issue's figures: a table here, and an HTML page)."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from newsletter import safe_files
from newsletter.audience.suppression import month_summary
from newsletter.cli.context import config_of, issue_arg, open_store
from newsletter.cli.output import say
from newsletter.compose.drafts import check_issue_id
from newsletter.config import Config
from newsletter.deliver.report import issue_report, report_path, table_lines
from newsletter.deliver.report_html import report_page
from newsletter.deliver.segment_report import status_lines
from newsletter.deliver.send_safety import transport_lines
from newsletter.store import ledger
from newsletter.store.db import Db
from newsletter.store.editions import LATE_MARK
from newsletter.store.sendlog import transport_uses


def cmd_status(args: argparse.Namespace) -> int:
    config = config_of(args)
    issue = args.issue.partition(".")[0] if args.issue else None
    if issue:
        check_issue_id(issue)
    with open_store(config) as conn:
        counts = ledger.counts(conn, issue)
        bounces = month_summary(conn, datetime.now(UTC), config.timezone)
        if not counts:
            say(f"no sends recorded{' for ' + issue if issue else ''}")
        for name, states in counts.items():
            _issue_status(conn, config, name, states)
        if bounces:
            say(bounces)
        # Which database this was: a host whose URL did not reach it (an env file that
        # did not load) would otherwise read its own empty SQLite file and look fine.
        sqlite = conn.engine == "sqlite"
        say(f"database: {os.path.abspath(conn.where) if sqlite else conn.where} "
            f"({'SQLite' if sqlite else 'PostgreSQL'})")
    return 0


def _issue_status(conn: Db, config: Config, name: str, states: dict[str, int]) -> None:
    total = sum(states.values())
    late = f" (late '{name.partition(LATE_MARK)[2]}' edition)" \
        if LATE_MARK in name else ""
    say(f"{name}{late}: {total} subscriber(s): " + ", ".join(
        f"{state} {n}" for state, n in states.items() if n))
    # "got" once every row is settled; while some are still open, they "get" it
    verb = "get" if any(states[s] for s in ledger.OPEN_STATES) else "got"
    editions = ledger.edition_counts(conn, name)
    if len(editions) > 1 or any(ledger.fallbacks(conn, name)):
        say("  editions: " + ", ".join(f"{lang} {n}" for lang, n in editions.items()))
    for line in status_lines(conn, name):  # as frozen: who got which variant
        say("  " + line)
    for line in transport_lines(transport_uses(conn, name), config.timezone):
        say("  " + line)
    for language, sent_as, n in ledger.fallbacks(conn, name):
        say(f"  {n} subscriber(s) in '{language or '?'}' {verb} the '{sent_as}' "
            "edition (no edition in their language)")
    for row in ledger.problem_rows(conn, name):
        say(f"  {row.state:8} {row.email}  {row.last_reply}")


def cmd_report(args: argparse.Namespace) -> int:
    config = config_of(args)
    check_issue_id(args.issue)
    with open_store(config) as conn:
        report = issue_report(conn, args.issue)
    for line in table_lines(report, config.timezone):
        say(line)
    path = report_path(config, args.issue, args.out)
    safe_files.write_text(path, report_page(config, report), root=config.root)
    say(f"report of {args.issue}: {len(report.editions)} edition(s), "
        f"{sum(e.delivered for e in report.editions)} delivered; written to {path}")
    return 0


def add_status_arguments(cmd: argparse.ArgumentParser) -> None:
    issue_arg(cmd, optional=True)


def add_report_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("issue", metavar="ISSUE", help="YYYY-MM, an issue that was sent")
    cmd.add_argument("--out", metavar="FILE",
                     help="the HTML page to write (default: build/ISSUE/report.html)")
