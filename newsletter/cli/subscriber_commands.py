"""`newsletter subscribers`: import CSV files, export, add, remove, list (show, forget and
reasons are audience_commands')."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from newsletter.audience.consent import add_with_consent, removed
from newsletter.audience.csv_export import write_export
from newsletter.audience.importing import FileImport, import_file
from newsletter.audience.subscribers import STATUSES, make_subscriber, normalise_address
from newsletter.cli import audience_commands
from newsletter.cli.context import config_of, open_store
from newsletter.cli.output import say, warn
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.store.reader import choices_kept_from


def cmd_subscribers(args: argparse.Namespace) -> int:
    config = config_of(args)
    action = args.action
    if action in audience_commands.ACTIONS:  # show, forget, reasons
        return audience_commands.run(args, config)
    if action == "import":
        if not args.files:
            raise InputError("subscribers import needs one or more CSV files")
        added, updated, rejected, kept = import_files(
            config, args.files, override_reader=args.override == "reader")
        say(f"imported: {added} new, {updated} updated, {rejected} rejected"
            + (f", {kept} reader's own value(s) kept" if kept else ""))
        return 2 if rejected else 0
    with open_store(config) as conn:
        if action == "add":
            return _add(conn, config, args)
        if action == "remove":
            return _remove(conn, args.address)
        if action == "export":
            target = Path(args.file).absolute()  # the folder is the operator's choice
            n = write_export(target, store_subscribers.iter_subscribers(conn), root=target.parent)
            say(f"exported {n} subscriber(s) to {args.file}")
            return 0
        _list(conn, args.status)
    return 0


def import_files(config: Config, files: Iterable[str | Path], *, quiet: bool = False,
                 override_reader: bool = False) -> tuple[int, int, int, int]:
    """Import CSV files, a line each (quiet, the send path: only a file that changed
    something). Returns (added, updated, rejected, kept)."""
    added = updated = rejected = kept = 0
    with open_store(config) as conn:
        for path in files:
            done = import_file(conn, config, path, quiet=quiet, override_reader=override_reader)
            if done is None:  # unchanged since its last import
                continue
            for warning in done.warnings:
                warn(warning)
            added, updated = added + done.added, updated + done.updated
            rejected, kept = rejected + done.rejected, kept + done.kept
            if not quiet or done.changed:
                say(_file_line(done))
    return added, updated, rejected, kept


def _file_line(done: FileImport) -> str:
    return (f"{done.path}: {done.addresses} address(es), {done.added} new, {done.updated} "
            f"updated, {done.merged} duplicate row(s) merged, {done.rejected} rejected"
            + (f", {done.kept} reader's own value(s) kept" if done.kept else "")
            + (f", {done.overridden} reader's own value(s) replaced" if done.overridden else "")
            + (f", {done.skipped} forgotten reader(s) skipped" if done.skipped else "")
            + (f"; {done.unchanged} row(s) unchanged since the last import" if done.unchanged
               else ""))


def _add(conn: Db, config: Config, args: argparse.Namespace) -> int:
    try:
        sub = make_subscriber(args.address, args.name or "", args.language or "",
                              default_language=config.default_language)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    for choice in choices_kept_from(conn, sub):  # the reader's own edit wins here too
        warn(choice.describe("subscribers add", offered_by="this command",
                             how="the reader changes it on the preferences page"))
    status = add_with_consent(conn, config, sub)
    if status != "active":
        say(f"{sub.email}: {status}; not re-activated (someone who left rejoins by "
            "confirming a subscription themselves)")
        return 0
    say(f"{sub.email}: active")
    return 0


def _remove(conn: Db, address: str) -> int:
    try:
        email = normalise_address(address)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if not store_subscribers.set_status(conn, email, "unsubscribed", "removed by an editor"):
        raise InputError(f"{email} is not on the list")
    removed(conn, email)
    say(f"{email}: unsubscribed")
    return 0


def _list(conn: Db, status: str | None) -> None:
    if status and status not in STATUSES:
        raise InputError(f"--status must be one of {', '.join(STATUSES)}")
    for sub in store_subscribers.iter_subscribers(conn, status):
        reason = f"  ({sub.reason})" if sub.reason else ""
        say(f"{sub.email}\t{sub.name}\t{sub.language}\t{sub.status}{reason}")
    counts = store_subscribers.subscriber_counts(conn)
    say("total " + str(sum(counts.values())) + ": " + (", ".join(
        f"{status} {n}" for status, n in counts.items()) or "none"))


def add_subscribers_arguments(cmd: argparse.ArgumentParser) -> None:
    sub = cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import CSV files (email, name, language, tags)")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--override", choices=("reader",),
                     help="reader: apply the CSV's name and language even where the reader "
                          "changed their own (status is never changed by an import)")
    exp = sub.add_parser("export", help="write every subscriber and status to a CSV file")
    exp.add_argument("file", metavar="FILE")
    add = sub.add_parser("add", help="add one address")
    add.add_argument("address", metavar="ADDR")
    add.add_argument("--name", default="")
    add.add_argument("--language", default="")
    rem = sub.add_parser("remove", help="unsubscribe one address")
    rem.add_argument("address", metavar="ADDR")
    lst = sub.add_parser("list", help="list subscribers, with counts by status")
    lst.add_argument("--status", help="only this status (active, unsubscribed, bounced, ...)")
    audience_commands.add_parsers(sub)  # show, forget, reasons
    cmd.set_defaults(files=None, file=None, address=None, name=None, language=None, status=None,
                     override=None, json=False)
