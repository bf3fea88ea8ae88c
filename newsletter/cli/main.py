"""The command line: parse arguments, call one stage, turn errors into messages and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from newsletter import __version__
from newsletter.config import Config, load_config
from newsletter.errors import InputError, NewsletterError
from newsletter.store import sqlite as store
from newsletter.store.db import Db

log = logging.getLogger("newsletter")


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
    except OSError as exc:  # a file that cannot be written or read at the system level
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"newsletter: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("newsletter: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsletter", description="Write, check, build and send a monthly email newsletter.",
        epilog="`newsletter COMMAND --help` describes a command. Exit codes: 0 done or nothing "
               "to do, 1 needs an operator's look, 2 bad usage or input.")
    parser.add_argument("--config", default="newsletter.toml", type=Path,
                        help="settings file (default: ./newsletter.toml)")
    parser.add_argument("--version", action="version", version=f"newsletter {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    from newsletter.cli import (
        compose_commands as commands,  # the command bodies; kept apart so this file stays thin
    )

    for name, (func, help_text, add_args) in commands.COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add_args(cmd)
        cmd.set_defaults(run=func)
    return parser


def config_of(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def parse_now(value: str | None, config: Config) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"--now must be an ISO 8601 date-time, not {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=config.timezone)


def open_store(config: Config) -> Db:
    """`with open_store(config) as db:` opens the database and always closes it."""
    return store.connect(config.store_path)


