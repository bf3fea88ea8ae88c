"""The delivery commands: send, status, subscribers and serve (the CLI's other half)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from newsletter.audience.tokens import secret_from_env
from newsletter.cli.compose_commands import _issue_arg, resolve_draft, say, warn
from newsletter.cli.main import config_of, open_store, parse_now
from newsletter.compose.drafts import Draft, check_issue_id, load_draft
from newsletter.config import Config
from newsletter.errors import InputError

if TYPE_CHECKING:
    from rich.progress import Progress as RichBar
    from rich.progress import TaskID


def cmd_send(args: argparse.Namespace) -> int:
    from newsletter.audience.subscribers import normalise_address
    from newsletter.deliver.deliverability import unsigned_bulk_warning
    from newsletter.deliver.send import SendOptions, Transports, outbox_hint, send
    from newsletter.deliver.transport_choice import implicit_warning

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
    tests = []
    for addr in args.to or ():
        try:
            tests.append(normalise_address(addr))
        except ValueError as exc:
            raise InputError(f"--to: {exc}") from exc
    transports = Transports(config)  # a transport that cannot be used stops here (exit 2)
    if not tests and not args.dry_run and config.subscriber_files:  # editors edit CSV
        _import_files(config, config.subscriber_files, quiet=True)
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
                                               tuple(tests), parse_shard(args.shard),
                                               off_schedule_ok),
                      transports=transports, on_progress=progress.update, on_note=say)
    finally:
        progress.close()
    for problem in report.problems:
        warn(problem)
    if report.stop_reason:
        warn(report.stop_reason)
    if report.note:
        say(report.note)
    if report.sent and not transports.is_smtp:
        say(outbox_hint(transports.outbox))
    if report.timings and os.environ.get("NEWSLETTER_TIMINGS"):
        say("timings: " + ", ".join(f"{name} {sec:.3f} s" for name, sec in report.timings))
    say(report.summary() + f" via {report.transport}")
    return report.exit_code


def _interactive() -> bool:
    """A person at a terminal: stdin and stdout both ttys (cron and pipes have neither)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(config: Config, now: datetime, draft: Draft | None, transport: str) -> bool | None:
    """Show who will get what and ask; None when the run would mail no one (nothing to ask)."""
    from newsletter.deliver.send_safety import is_yes, preview_run

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


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise InputError(f"--shard must be K/N with 1 <= K <= N (e.g. 2/3), not {value!r}")
    return int(k), int(n)


class Progress:
    """A bar on a terminal; a plain line every 10 s under cron (no terminal)."""

    def __init__(self) -> None:
        self.bar: RichBar | None = None
        self.task: TaskID | None = None
        self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, tally, total: int) -> None:  # noqa: ANN001
        if self.tty:
            if self.bar is None:
                from rich.progress import Progress as Bar

                self.bar = Bar(transient=True)
                self.bar.start()
                self.task = self.bar.add_task("sending", total=total)
            self.bar.update(cast("TaskID", self.task), completed=tally.done)  # set with the bar
        elif time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(f"progress: {tally.done}/{total} (sent {tally.sent}, deferred {tally.deferred}, "
                  f"failed {tally.failed}, unknown {tally.unknown})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def cmd_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from newsletter.audience.suppression import month_summary
    from newsletter.deliver import ledger
    from newsletter.deliver.segment_report import status_lines
    from newsletter.deliver.send_safety import transport_lines
    from newsletter.store.sendlog import transport_uses

    config = config_of(args)
    issue = args.issue.partition(".")[0] if args.issue else None
    if issue:
        check_issue_id(issue)
    with open_store(config) as conn:
        counts = ledger.counts(conn, issue)
        bounces = month_summary(conn, datetime.now(UTC), config.timezone)
        if not counts:
            say(f"no sends recorded{' for ' + issue if issue else ''}")
            if bounces:
                say(bounces)
            return 0
        for name, states in counts.items():
            total = sum(states.values())
            late = f" (late '{name.partition(ledger.LATE_MARK)[2]}' edition)" \
                if ledger.LATE_MARK in name else ""
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
                say(f"  {row['state']:8} {row['email']}  {row['last_reply']}")
    if bounces:
        say(bounces)
    return 0


def _import_files(config: Config, files, *, quiet: bool = False,  # noqa: ANN001
                  override_reader: bool = False) -> tuple[int, int, int, int]:
    """Import CSV files. quiet (the send path): skip files unchanged since their last import
    and say nothing unless something changed, so a cron run over 100,000 rows stays cheap.
    A name or language the reader set themselves is kept, with a warning naming file:line,
    unless override_reader. Returns (added, updated, rejected, kept)."""
    import hashlib
    from datetime import UTC, datetime

    from newsletter.audience.consent import plan_import, record_new
    from newsletter.audience.subscribers import read_csv
    from newsletter.store import sqlite as store
    from newsletter.store.reader import merge_subscribers

    added = updated = rejected = kept = 0
    with open_store(config) as conn:
        for path in files:
            key = str(Path(path).resolve())
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                digest = ""  # read_csv reports the problem with the file's name
            if quiet and digest and store.imported_digest(conn, key) == digest:
                continue
            parsed = read_csv(Path(path), default_language=config.default_language)
            for row in parsed.rejected:
                warn(str(row))
            for note in parsed.notes:
                warn(note)
            plan = plan_import(conn, config, str(path), parsed.subscribers, parsed.lines,
                               datetime.now(UTC))
            for skipped in plan.skipped:  # forgotten readers: never added again by an import
                warn(skipped)
            merged = merge_subscribers(conn, plan.subscribers, override_reader=override_reader)
            record_new(conn, plan.events)  # "subscribed by CSV import, file:line"
            line_of = {s.email.lower(): n for s, n in zip(parsed.subscribers, parsed.lines,
                                                           strict=True)}
            for choice in merged.kept:
                warn(choice.describe(f"{path}:{line_of.get(choice.email.lower(), '?')}"))
            store.record_import(conn, key, digest)
            a, u = merged.added, merged.updated
            added, updated, rejected = added + a, updated + u, rejected + len(parsed.rejected)
            kept += len(merged.kept)
            if not quiet or a or u or parsed.rejected or merged.kept:
                say(f"{path}: {len(parsed.subscribers)} address(es), {a} new, {u} updated, "
                    f"{parsed.merged} duplicate row(s) merged, {len(parsed.rejected)} rejected"
                    + (f", {len(merged.kept)} reader's own value(s) kept" if merged.kept else "")
                    + (f", {merged.overridden} reader's own value(s) replaced"
                       if merged.overridden else "")
                    + (f", {len(plan.skipped)} forgotten reader(s) skipped"
                       if plan.skipped else ""))
    return added, updated, rejected, kept


def cmd_subscribers(args: argparse.Namespace) -> int:
    from newsletter.audience.subscribers import STATUSES, make_subscriber
    from newsletter.store import sqlite as store

    config = config_of(args)
    action = args.action
    from newsletter.cli import audience_commands as consent_commands

    if action in consent_commands.ACTIONS:  # show, forget, reasons
        return consent_commands.run(args, config)
    if action == "import":
        if not args.files:
            raise InputError("subscribers import needs one or more CSV files")
        added, updated, rejected, kept = _import_files(
            config, args.files, override_reader=args.override == "reader")
        say(f"imported: {added} new, {updated} updated, {rejected} rejected"
            + (f", {kept} reader's own value(s) kept" if kept else ""))
        return 2 if rejected else 0
    with open_store(config) as conn:
        if action == "add":
            try:
                sub = make_subscriber(args.address, args.name or "", args.language or "",
                                      default_language=config.default_language)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            from newsletter.store.reader import choices_kept_from

            for choice in choices_kept_from(conn, sub):  # the reader's own edit wins here too
                warn(choice.describe("subscribers add", offered_by="this command",
                                     how="the reader changes it on the preferences page"))
            status = consent_commands.add_with_consent(conn, config, sub)
            if status != "active":
                say(f"{sub.email}: {status}; not re-activated (someone who left rejoins by "
                    "confirming a subscription themselves)")
                return 0
            say(f"{sub.email}: active")
            return 0
        if action == "remove":
            from newsletter.audience.subscribers import normalise_address

            try:
                email = normalise_address(args.address)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            if not store.set_status(conn, email, "unsubscribed", "removed by an editor"):
                raise InputError(f"{email} is not on the list")
            consent_commands.removed(conn, email)
            say(f"{email}: unsubscribed")
            return 0
        if action == "export":
            from newsletter.audience.subscribers import write_export

            target = Path(args.file).absolute()  # the folder is the operator's choice
            n = write_export(target, store.iter_subscribers(conn), root=target.parent)
            say(f"exported {n} subscriber(s) to {args.file}")
            return 0
        if args.status and args.status not in STATUSES:
            raise InputError(f"--status must be one of {', '.join(STATUSES)}")
        for sub in store.iter_subscribers(conn, args.status):
            reason = f"  ({sub.reason})" if sub.reason else ""
            say(f"{sub.email}\t{sub.name}\t{sub.language}\t{sub.status}{reason}")
        counts = store.subscriber_counts(conn)
        say("total " + str(sum(counts.values())) + ": " + (", ".join(
            f"{status} {n}" for status, n in counts.items()) or "none"))
    return 0


def _add_send(cmd: argparse.ArgumentParser) -> None:
    _issue_arg(cmd, optional=True)
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
    cmd.add_argument("--shard", metavar="K/N",
                     help="send only to the K-th of N slices of the list (several senders)")


def _add_status(cmd: argparse.ArgumentParser) -> None:
    _issue_arg(cmd, optional=True)


def _add_subscribers(cmd: argparse.ArgumentParser) -> None:
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
    from newsletter.cli.audience_commands import add_parsers

    add_parsers(sub)  # show, forget, reasons
    cmd.set_defaults(files=None, file=None, address=None, name=None, language=None, status=None,
                     override=None, json=False)


COMMANDS = {
    "send": (cmd_send, "send due issues (or one ISSUE); --dry-run, --to ADDR, --now", _add_send),
    "status": (cmd_status, "ledger counts by state; failed and unknown addresses", _add_status),
    "subscribers": (cmd_subscribers, "import, export, add, remove, list subscribers",
                    _add_subscribers),
}


def cmd_serve(args: argparse.Namespace) -> int:
    from newsletter.deliver.send import Transports
    from newsletter.web.serving import serve

    config = config_of(args)
    if not secret_from_env()[1] and not args.dev:
        raise InputError("NEWSLETTER_SECRET is not set: the unsubscribe and confirm links "
                         "would be forgeable (`--dev` serves with a development secret, "
                         "for trying it out on this machine only)")
    def ready() -> None:
        say(f"serving {config.name} at http://{args.host}:{args.port}"
            f"{urlsplit(config.base_url).path or '/'} (public address {config.base_url}); "
            "Ctrl-C stops")
        say(f"confirmation mail goes out through {Transports(config).description}; "
            "failures are logged here")

    serve(config, args.host, args.port, threads=args.threads, on_ready=ready)
    return 0


def _add_serve(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    cmd.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    cmd.add_argument("--dev", action="store_true",
                     help="allow running without NEWSLETTER_SECRET (never on a public host)")


COMMANDS["serve"] = (cmd_serve, "run the web app: one-click unsubscribe, subscribe with "
                     "double opt-in, preferences, web view", _add_serve)


