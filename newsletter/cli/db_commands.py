"""`newsletter db migrate-to postgresql://USER@HOST:PORT/DB`: copy the SQLite database into an
empty PostgreSQL database, check the counts, and say how to switch over."""

from __future__ import annotations

import argparse
import sys
import time

from newsletter.cli.context import config_of
from newsletter.cli.output import say
from newsletter.deliver.lock import SendLock
from newsletter.errors import InputError, NewsletterError
from newsletter.store.connect import URL_ENV, database_url
from newsletter.store.copy_engine import CopyReport, copy_to_postgres, sqlite_source

BIG = 10_000  # rows: a table this size gets progress lines while it is copied


def cmd_db(args: argparse.Namespace) -> int:
    if args.action != "migrate-to":
        raise InputError(f"unknown db action {args.action!r} (known: migrate-to)")
    config = config_of(args)
    source = sqlite_source(database_url(config))
    # A send running on the file keeps writing the ledger after the copy's snapshot: those
    # messages would be `pending` in PostgreSQL and go out again. Holding the send lock
    # makes a send wait for the copy (it exits "another send is running") and the copy
    # refuse while one runs.
    lock = SendLock(config.store_path.with_name(config.store_path.name + ".lock"))
    with lock:
        if not lock.acquire():
            raise NewsletterError("a send is running on this database; run migrate-to once "
                                  "it has finished", where=str(source))
        report = copy_to_postgres(source, args.url, on_progress=_Progress().update)
    _print_report(report)
    return 0


class _Progress:
    """A line on stderr for a big table, at most every 2 s, and when it is done."""

    def __init__(self) -> None:
        self.last = 0.0

    def update(self, table: str, done: int, total: int) -> None:
        if total < BIG or (done < total and time.monotonic() - self.last < 2):
            return
        self.last = time.monotonic()
        print(f"{table}: {done:,}/{total:,} rows", file=sys.stderr, flush=True)


def _print_report(report: CopyReport) -> None:
    width = max(len(t.table) for t in report.tables)
    say(f"{'table':<{width}}  {'sqlite':>10}  {'postgresql':>10}  next id")
    for t in sorted(report.tables, key=lambda t: t.table):
        next_id = "" if t.next_id is None else f"{t.next_id:,}"
        say(f"{t.table:<{width}}  {t.source_rows:>10,}  {t.target_rows:>10,}  {next_id}")
    say(f"copied {len(report.tables)} tables, {report.rows:,} rows from {report.source} into "
        f"{report.target}; every count matches")
    say(f"next: point {URL_ENV} (or [store] url) at this database on every host, the "
        "password in NEWSLETTER_DATABASE_PASSWORD or ~/.pgpass; keep the SQLite file as a "
        "backup")


def add_db_arguments(cmd: argparse.ArgumentParser) -> None:
    sub = cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    move = sub.add_parser("migrate-to", help="copy the SQLite database into an empty "
                          "PostgreSQL database (one transaction; counts checked)")
    move.add_argument("url", metavar="URL", help="postgresql://USER@HOST:PORT/DB (the "
                      "password from NEWSLETTER_DATABASE_PASSWORD, PGPASSWORD or ~/.pgpass)")
