"""`newsletter send`: ask when a person runs it, send, print what happened, pick the exit code."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime
from pathlib import Path

from newsletter.audience.subscribers import normalise_address
from newsletter.cli.context import config_of, issue_arg, open_store, parse_now, resolve_draft
from newsletter.cli.output import Progress, error, say, warn
from newsletter.cli.subscriber_commands import import_files
from newsletter.compose.drafts import Draft, load_draft
from newsletter.config import Config
from newsletter.deliver.deliverability import unsigned_bulk_warning
from newsletter.deliver.send import SendOptions, SendReport, Transports, send
from newsletter.deliver.send_safety import is_yes, preview_run
from newsletter.deliver.transport_choice import implicit_warning
from newsletter.errors import InputError


def cmd_send(args: argparse.Namespace) -> int:
    if args.shard:
        raise InputError("send --shard is gone: several senders now share one PostgreSQL "
                         "database and claim rows from it (docs/scaling.md)")
    config = config_of(args)
    if args.issue is None and args.now and (re.fullmatch(r"\d{4}-\d{2}(\.[\w-]+)?", args.now)
                                            or args.now.endswith(".md")):
        args.issue, args.now = args.now, ""  # `send --now 2026-12`: an issue, not a clock
    now = parse_now(args.now, config)
    draft = None
    if args.issue:
        draft = load_draft(resolve_draft(config, args.issue), timezone=config.timezone,
                           default_language=config.default_language)
        if draft.language != config.default_language and not args.to:
            raise InputError(f"send takes the issue ({draft.issue}); its language editions "
                             f"go with it (a test send of one edition: --to ADDR)")
    tests = _test_addresses(args.to or ())
    transports = Transports(config)  # a transport that cannot be used stops here (exit 2)
    if not tests and not args.dry_run and config.subscriber_files:  # editors edit CSV
        import_files(config, config.subscriber_files, quiet=True)
    if not tests and (implicit := implicit_warning(transports.choice)):
        warn(implicit)
    # Off-schedule issues go when the operator said so: a bare --now, --yes, or a yes below.
    off_schedule_ok = args.now == "" or args.yes
    # The question is for `send ISSUE` typed by a person; a plain `send` (cron's, and
    # `make send`'s) never asks, so it can never wait on a terminal nobody watches.
    if draft is not None and not tests and not args.dry_run and not args.yes \
            and _interactive():
        answer = _confirm(config, now, draft, transports.choice.label)
        if answer is False:
            say("not sent: nothing claimed")
            return 1
        off_schedule_ok = off_schedule_ok or bool(answer)
    if (unsigned := unsigned_bulk_warning(config, transports.is_smtp)) and not args.to:
        warn(unsigned)
    progress = Progress()
    try:
        report = send(config, now, SendOptions(draft, args.dry_run, args.resend_unknown,
                                               tests, off_schedule_ok),
                      transports=transports, on_progress=progress.update, on_note=say)
    finally:
        progress.close()
    _print_report(report, transports)
    return exit_code(report)


def _test_addresses(addresses: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    tests = []
    for addr in addresses:
        try:
            tests.append(normalise_address(addr))
        except ValueError as exc:
            raise InputError(f"--to: {exc}") from exc
    return tuple(tests)


def _print_report(report: SendReport, transports: Transports) -> None:
    for problem in report.problems:
        warn(problem)
    if report.stop_reason:  # the run failed (exit 1): not a warning
        error(report.stop_reason)
    if report.note:
        say(report.note)
    if report.sent and not transports.is_smtp:
        say(outbox_hint(transports.outbox))
    if report.timings and os.environ.get("NEWSLETTER_TIMINGS"):
        say("timings: " + ", ".join(f"{name} {sec:.3f} s" for name, sec in report.timings))
    say(summary(report) + f" via {report.transport}")


def summary(report: SendReport) -> str:
    return (f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}, "
            f"unknown {report.unknown}, skipped {report.skipped} in {report.seconds:.1f} s")


def exit_code(report: SendReport) -> int:
    """1 when the operator must look: a stop, an unknown outcome, a crash recovered, a problem."""
    return 1 if (report.stop_reason or report.unknown or report.recovered
                 or report.problems) else 0


def outbox_hint(outbox: Path) -> str:
    return (f"messages are in {outbox}/new (open it with any mail client, e.g. `mutt -f "
            f"{outbox}`); to send for real set [delivery] transport = \"smtp\" in "
            "newsletter.toml and NEWSLETTER_SMTP_URL")


def _interactive() -> bool:
    """A person at a terminal: stdin and stdout both ttys (cron and pipes have neither)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(config: Config, now: datetime, draft: Draft | None, transport: str) -> bool | None:
    """Show who will get what and ask; None when the run would mail no one (nothing to ask)."""
    with open_store(config) as conn:
        preview = preview_run(config, conn, now, only=draft, transport=transport)
    if not preview.readers:
        return None
    for line in preview.lines():
        say(line)
    question = f"send to {preview.readers} reader(s)"
    if preview.off_schedule:
        question += f", {len(preview.off_schedule)} issue(s) off schedule"
    try:
        answer = input(f"{question}? [y/N] ")
    except EOFError:
        answer = ""
    return is_yes(answer)


def add_send_arguments(cmd: argparse.ArgumentParser) -> None:
    issue_arg(cmd, optional=True)
    cmd.add_argument("--dry-run", action="store_true", help="render everything, send nothing")
    cmd.add_argument("--to", nargs="+", metavar="ADDR",
                     help="test send to these addresses only (subject marked, ledger untouched)")
    cmd.add_argument("--now", nargs="?", const="", metavar="TIME",
                     help="send now, issues off schedule too; with TIME (ISO 8601): the "
                          "clock, for testing schedules")
    cmd.add_argument("--yes", action="store_true",
                     help="do not ask at a terminal; send issues off schedule too (scripts)")
    cmd.add_argument("--resend-unknown", action="store_true",
                     help="also resend deliveries whose outcome is unknown (may duplicate)")
    # Gone with issue 13: an old crontab's --shard gets a pointer, not argparse's usage.
    cmd.add_argument("--shard", metavar="K/N", help=argparse.SUPPRESS)
