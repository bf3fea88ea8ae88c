"""What every command starts from: the config, the database, the clock, the draft it names,
and the argument builders several commands share.

A leaf: it imports no command module, so any command module can import it.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from newsletter.compose.drafts import check_issue_id, draft_path
from newsletter.config import Config, load_config
from newsletter.errors import InputError
from newsletter.store import connect as store_connect
from newsletter.store.db import Db


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
    return store_connect.open_store(store_connect.database_url(config))


def resolve_draft(config: Config, issue: str) -> Path:
    """ISSUE as YYYY-MM, YYYY-MM.LANG, or a path to the draft file."""
    if issue.endswith(".md"):
        return Path(issue)
    base, _, lang = issue.partition(".")
    check_issue_id(base)
    return draft_path(config.issues_dir, base, lang, config.default_language)


def issue_arg(cmd: argparse.ArgumentParser, *, optional: bool = False) -> None:
    cmd.add_argument("issue", nargs="?" if optional else None, metavar="ISSUE",
                     help="YYYY-MM (a draft in issues/), or a path to a draft file")


def now_arg(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing)")
