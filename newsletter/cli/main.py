"""The command line: parse arguments, call one command, turn errors into messages and exit
codes. COMMANDS is the one table of every command; nothing registers itself at import time."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter import __version__
from newsletter.cli import (
    bounce_commands,
    compose_commands,
    db_commands,
    dkim_commands,
    send_commands,
    status_commands,
    subscriber_commands,
    translate_commands,
    web_commands,
)
from newsletter.errors import NewsletterError

log = logging.getLogger("newsletter")


@dataclass(frozen=True)
class Command:
    name: str
    run: Callable[[argparse.Namespace], int]
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]


# In the order `newsletter --help` lists them.
COMMANDS = (
    Command("new", compose_commands.cmd_new,
            "start a draft from issues/_template.md (default: next month)",
            compose_commands.add_new_arguments),
    Command("pull", compose_commands.cmd_pull,
            "fetch the feeds and write the issue's item snapshot",
            compose_commands.add_pull_arguments),
    Command("build", compose_commands.cmd_build,
            "write the preview: HTML, text, a sample .eml, screenshots",
            compose_commands.add_build_arguments),
    Command("check", compose_commands.cmd_check,
            "report every problem with an issue; exit 1 on any error",
            compose_commands.add_check_arguments),
    Command("send", send_commands.cmd_send,
            "send due issues (or one ISSUE); --dry-run, --to ADDR, --now",
            send_commands.add_send_arguments),
    Command("status", status_commands.cmd_status,
            "ledger counts by state; failed and unknown addresses",
            status_commands.add_status_arguments),
    Command("subscribers", subscriber_commands.cmd_subscribers,
            "import, export, add, remove, list subscribers",
            subscriber_commands.add_subscribers_arguments),
    Command("serve", web_commands.cmd_serve,
            "run the web app: one-click unsubscribe, subscribe with double opt-in, "
            "preferences, web view", web_commands.add_serve_arguments),
    Command("bounces", bounce_commands.cmd_bounces,
            "read bounces, complaints and unsubscribe mail from a Maildir, mbox, folder of "
            ".eml or IMAP mailbox", bounce_commands.add_bounces_arguments),
    Command("archive", web_commands.cmd_archive,
            "write the public archive: every sent issue as a static site with Atom feeds "
            "(public/)", web_commands.add_archive_arguments),
    Command("preview", web_commands.cmd_preview,
            "a local page showing the issue's editions as subscribers get them, with check's "
            "findings; follows saved edits", web_commands.add_preview_arguments),
    Command("dkim", dkim_commands.cmd_dkim,
            "make a DKIM key pair and print the DNS record to publish",
            dkim_commands.add_dkim_arguments),
    Command("report", status_commands.cmd_report,
            "the month's figures of a sent issue per edition: delivered, bounced, complained, "
            "unsubscribed, clicks per link; a table and build/ISSUE/report.html",
            status_commands.add_report_arguments),
    Command("translate", translate_commands.cmd_translate,
            "XLIFF 2.0 for translators (export ISSUE --lang L, import FILE); done ISSUE.LANG: "
            "a translation is up to date", translate_commands.add_translate_arguments),
    Command("db", db_commands.cmd_db,
            "migrate-to postgresql://USER@HOST:PORT/DB: copy the SQLite database into an "
            "empty PostgreSQL one (one transaction, counts checked)", db_commands.add_db_arguments),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except NewsletterError as exc:
        print(f"newsletter: {exc}".replace("\n", "\nnewsletter: "), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `status | head`: the reader has what it wanted
        _silence_stdout()
        return 1
    except OSError as exc:  # a file that cannot be written or read at the system level
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"newsletter: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("newsletter: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit does not fail again on the
    closed pipe (the recipe of Python's signal module documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter", description="Write, check, build and send a monthly email newsletter.",
        epilog="`newsletter COMMAND --help` describes a command. Exit codes: 0 done or nothing "
               "to do, 1 needs an operator's look, 2 bad usage or input.")
    parser.add_argument("--config", default="newsletter.toml", type=Path,
                        help="settings file (default: ./newsletter.toml)")
    parser.add_argument("--version", action="version", version=f"newsletter {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        cmd = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(cmd)
        cmd.set_defaults(run=command.run)
    return parser
