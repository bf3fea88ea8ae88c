"""The CLI commands' bodies: each loads config, calls its stages, prints one summary line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from newsletter import store
from newsletter.check import check_editions, check_issue
from newsletter.cli import config_of, open_store, parse_now
from newsletter.compose import compose
from newsletter.config import Config
from newsletter.drafts import check_issue_id, draft_path, load_draft
from newsletter.errors import DraftError, InputError
from newsletter.message import make_envelope
from newsletter.preview import write_preview
from newsletter.pull import pull
from newsletter.tokens import make_token, secret_from_env


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(f"newsletter: warning: {line}", file=sys.stderr, flush=True)


def _elapsed(args: argparse.Namespace) -> str:
    return f"{time.monotonic() - args.started:.1f} s"


def _issue_arg(cmd: argparse.ArgumentParser, *, optional: bool = False) -> None:
    cmd.add_argument("issue", nargs="?" if optional else None, metavar="ISSUE",
                     help="YYYY-MM (a draft in issues/), or a path to a draft file")


def resolve_draft(config: Config, issue: str) -> Path:
    """ISSUE as YYYY-MM, YYYY-MM.LANG, or a path to the draft file."""
    if issue.endswith(".md"):
        return Path(issue)
    base, _, lang = issue.partition(".")
    check_issue_id(base)
    return draft_path(config.issues_dir, base, lang, config.default_language)


def cmd_new(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = parse_now(args.now, config).astimezone(config.timezone)
    issue = args.issue or next_month(now)
    check_issue_id(issue)
    path = draft_path(config.issues_dir, issue)
    template = config.issues_dir / "_template.md"
    if path.exists():
        raise InputError("already exists; edit it, or delete it to start again", where=str(path))
    try:
        text = template.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("no draft template", where=str(template)) from exc
    path.write_text(text.replace("SEND_AT", f"{issue}-01T09:00"), encoding="utf-8")
    say(f"created {path} from {template.name}: write it, then `newsletter pull {issue}`")
    return 0


def next_month(now: datetime) -> str:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return f"{year:04d}-{month:02d}"


def cmd_pull(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = config_of(args)
    draft = load_draft(resolve_draft(config, args.issue), timezone=config.timezone,
                       default_language=config.default_language)
    with open_store(config) as conn:
        result = pull(config, draft, conn, now=parse_now(args.now, config),
                      timeout=args.timeout)
    for warning in result.warnings:
        warn(warning)
    snap = result.snapshot
    for section, count in _count_sections(snap.items).items():
        say(f"  {section}: {count} item{'s' if count != 1 else ''}")
    say(f"pulled {len(snap.items)} items for {draft.issue} "
        f"(window {snap.window_start:%Y-%m-%d %H:%M} to {snap.window_end:%Y-%m-%d %H:%M} UTC) "
        f"into {result.path}, {len(result.warnings)} warning(s), "
        f"in {time.monotonic() - started:.1f} s")
    return 0


def _count_sections(items) -> dict[str, int]:  # noqa: ANN001
    counts: dict[str, int] = {}
    for item in items:
        counts[item.section] = counts.get(item.section, 0) + 1
    return counts


def sample_unsubscribe_url(config: Config, email: str) -> str:
    secret, _ = secret_from_env()
    return f"{config.base_url}/unsubscribe/{make_token(secret, config.list_id, email)}"


def envelope_of(config: Config):  # noqa: ANN201
    return make_envelope(config.name, config.sender.display_name, config.sender.addr_spec,
                         config.reply_to, config.list_id)


def cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = config_of(args)
    with open_store(config) as conn:
        composed = compose(config, resolve_draft(config, args.issue), conn,
                           now=parse_now(args.now, config))
    _report_pull(composed)
    edition = composed.edition
    out = Path(args.out) if args.out else config.root / "build" / composed.draft.path.stem
    files = write_preview(edition, envelope_of(config),
                          sample_unsubscribe_url(config, "reader@example.com"), out,
                          screenshots=not args.no_screenshots)
    for f in files.files:
        say(f"  {f}  {f.stat().st_size / 1024:.1f} KB")
    if files.note:
        warn(files.note)
    html_kb = len(edition.html.encode()) / 1024
    say(f"built {composed.draft.issue} ({edition.language}): "
        f"{len(composed.draft.sections)} sections, {len(composed.snapshot.items)} feed items, "
        f"HTML {html_kb:.1f} KB inlined (Gmail clips at 102 KB), "
        f"{len(files.files)} files in {files.directory} in {time.monotonic() - started:.1f} s")
    return 0


def _report_pull(composed) -> None:  # noqa: ANN001
    if composed.pulled:
        say(f"no snapshot yet: pulled {len(composed.snapshot.items)} items into "
            f"{composed.pulled.path}")
        for warning in composed.pulled.warnings:
            warn(warning)


def cmd_check(args: argparse.Namespace) -> int:
    config = config_of(args)
    path = resolve_draft(config, args.issue)
    try:
        with open_store(config) as conn:
            composed = compose(config, path, conn, now=parse_now(args.now, config))
            languages = store.subscriber_languages(conn)
    except DraftError as exc:
        for problem in exc.problems:
            line, text = ("", problem)
            if problem.startswith("line "):
                line, _, text = problem.partition(": ")
            where = f"{exc.where}:{line.removeprefix('line ')}" if line else exc.where
            print(f"{where}: error: {text}")
        say(f"check {path.name}: {len(exc.problems)} error(s), 0 warning(s)")
        return 1
    _report_pull(composed)
    problems = check_issue(composed.draft, composed.edition,
                           item_count=len(composed.snapshot.items))
    problems += check_editions(composed.draft, config.default_language, languages,
                               draft_path(config.issues_dir, composed.draft.issue))
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    say(f"check {path.name}: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def _add_new(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("issue", nargs="?", metavar="ISSUE", help="YYYY-MM (default: next month)")
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing)")


def _add_pull(cmd: argparse.ArgumentParser) -> None:
    _issue_arg(cmd)
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing)")
    cmd.add_argument("--timeout", type=float, default=10.0, help="seconds per feed (default 10)")


def _add_build(cmd: argparse.ArgumentParser) -> None:
    _issue_arg(cmd)
    cmd.add_argument("--out", help="output folder (default: build/ISSUE)")
    cmd.add_argument("--no-screenshots", action="store_true", help="skip the Chromium screenshots")
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing)")


def _add_check(cmd: argparse.ArgumentParser) -> None:
    _issue_arg(cmd)
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing)")


COMMANDS = {
    "new": (cmd_new, "start a draft from issues/_template.md (default: next month)", _add_new),
    "pull": (cmd_pull, "fetch the feeds and write the issue's item snapshot", _add_pull),
    "build": (cmd_build, "write the preview: HTML, text, a sample .eml, screenshots", _add_build),
    "check": (cmd_check, "report every problem with an issue; exit 1 on any error", _add_check),
}


# --- delivery ------------------------------------------------------------------------------

def cmd_send(args: argparse.Namespace) -> int:
    from newsletter.send import SendOptions, Transports, outbox_hint, send
    from newsletter.subscribers import normalise_address

    config = config_of(args)
    now = parse_now(args.now, config)
    draft = None
    if args.issue:
        draft = load_draft(resolve_draft(config, args.issue), timezone=config.timezone,
                           default_language=config.default_language)
    tests = []
    for addr in args.to or ():
        try:
            tests.append(normalise_address(addr))
        except ValueError as exc:
            raise InputError(f"--to: {exc}") from exc
    if not tests and config.subscriber_files:  # editors edit CSV; the list is read each run
        _import_files(config, config.subscriber_files, quiet=True)
    transports = Transports(config)
    progress = Progress()
    try:
        report = send(config, now, SendOptions(draft, args.dry_run, args.resend_unknown,
                                               tuple(tests), parse_shard(args.shard)),
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
        say(outbox_hint(report, transports.outbox))
    if report.timings and os.environ.get("NEWSLETTER_TIMINGS"):
        say("timings: " + ", ".join(f"{name} {sec:.3f} s" for name, sec in report.timings))
    say(report.summary() + f" via {report.transport}")
    return report.exit_code


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
        self.bar = None
        self.task = None
        self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, tally, total: int) -> None:  # noqa: ANN001
        if self.tty:
            if self.bar is None:
                from rich.progress import Progress as Bar

                self.bar = Bar(transient=True)
                self.bar.start()
                self.task = self.bar.add_task("sending", total=total)
            self.bar.update(self.task, completed=tally.done)
        elif time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(f"progress: {tally.done}/{total} (sent {tally.sent}, deferred {tally.deferred}, "
                  f"failed {tally.failed}, unknown {tally.unknown})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def cmd_status(args: argparse.Namespace) -> int:
    from newsletter import ledger

    config = config_of(args)
    issue = args.issue.partition(".")[0] if args.issue else None
    if issue:
        check_issue_id(issue)
    with open_store(config) as conn:
        counts = ledger.counts(conn, issue)
        if not counts:
            say(f"no sends recorded{' for ' + issue if issue else ''}")
            return 0
        for name, states in counts.items():
            total = sum(states.values())
            say(f"{name}: {total} subscriber(s): " + ", ".join(
                f"{state} {n}" for state, n in states.items() if n))
            editions = ledger.edition_counts(conn, name)
            if len(editions) > 1 or any(ledger.fallbacks(conn, name)):
                say("  editions: " + ", ".join(f"{lang} {n}" for lang, n in editions.items()))
            for language, sent_as, n in ledger.fallbacks(conn, name):
                say(f"  {n} subscriber(s) in '{language or '?'}' got the '{sent_as}' edition "
                    "(no edition in their language)")
            for row in ledger.problem_rows(conn, name):
                say(f"  {row['state']:8} {row['email']}  {row['last_reply']}")
    return 0


def _import_files(config: Config, files, *, quiet: bool = False) -> tuple[int, int, int]:  # noqa: ANN001
    """Import CSV files. quiet (the send path): skip files unchanged since their last import
    and say nothing unless something changed, so a cron run over 100,000 rows stays cheap."""
    import hashlib

    from newsletter import store
    from newsletter.subscribers import read_csv

    added = updated = rejected = 0
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
            a, u = store.upsert_subscribers(conn, parsed.subscribers)
            store.record_import(conn, key, digest)
            added, updated, rejected = added + a, updated + u, rejected + len(parsed.rejected)
            if not quiet or a or u or parsed.rejected:
                say(f"{path}: {len(parsed.subscribers)} address(es), {a} new, {u} updated, "
                    f"{parsed.merged} duplicate row(s) merged, {len(parsed.rejected)} rejected")
    return added, updated, rejected


def cmd_subscribers(args: argparse.Namespace) -> int:
    from newsletter import store
    from newsletter.subscribers import STATUSES, export_cell, make_subscriber

    config = config_of(args)
    action = args.action
    if action == "import":
        if not args.files:
            raise InputError("subscribers import needs one or more CSV files")
        added, updated, rejected = _import_files(config, args.files)
        say(f"imported: {added} new, {updated} updated, {rejected} rejected")
        return 2 if rejected else 0
    with open_store(config) as conn:
        if action == "add":
            try:
                sub = make_subscriber(args.address, args.name or "", args.language or "",
                                      default_language=config.default_language)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            status = store.add_subscriber(conn, sub)
            if status != "active":
                say(f"{sub.email}: {status}; not re-activated (someone who left rejoins by "
                    "confirming a subscription themselves)")
                return 0
            say(f"{sub.email}: active")
            return 0
        if action == "remove":
            from newsletter.subscribers import normalise_address

            try:
                email = normalise_address(args.address)
            except ValueError as exc:
                raise InputError(str(exc)) from exc
            if not store.set_status(conn, email, "unsubscribed", "removed by an editor"):
                raise InputError(f"{email} is not on the list")
            say(f"{email}: unsubscribed")
            return 0
        if action == "export":
            import csv

            with open(args.file, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(["email", "name", "language", "tags", "status", "reason"])
                n = 0
                for sub in store.iter_subscribers(conn):
                    writer.writerow([export_cell(v) for v in (
                        sub.email, sub.name, sub.language, ";".join(sub.tags), sub.status,
                        sub.reason)])
                    n += 1
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
    cmd.add_argument("--now", help="the clock, ISO 8601 (for testing schedules)")
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
    cmd.set_defaults(files=None, file=None, address=None, name=None, language=None, status=None)


COMMANDS.update({
    "send": (cmd_send, "send due issues (or one ISSUE); --dry-run, --to ADDR, --now", _add_send),
    "status": (cmd_status, "ledger counts by state; failed and unknown addresses", _add_status),
    "subscribers": (cmd_subscribers, "import, export, add, remove, list subscribers",
                    _add_subscribers),
})


def cmd_serve(args: argparse.Namespace) -> int:
    from newsletter.web import serve

    config = config_of(args)
    say(f"serving {config.name} at http://{args.host}:{args.port}"
        f"{urlsplit(config.base_url).path or '/'} (public address {config.base_url}); Ctrl-C stops")
    serve(config, args.host, args.port, threads=args.threads)
    return 0


def _add_serve(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    cmd.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")


COMMANDS["serve"] = (cmd_serve, "run the web app: one-click unsubscribe, subscribe with "
                     "double opt-in, preferences, web view", _add_serve)


def _register_optional_commands() -> None:
    from newsletter.archive import add_archive_arguments, cmd_archive
    from newsletter.bounces import add_bounces_arguments, cmd_bounces
    from newsletter.dkim import add_dkim_arguments, cmd_dkim

    COMMANDS["bounces"] = (cmd_bounces, "read bounces and complaints from a Maildir or mbox "
                           "file; suppress those addresses", add_bounces_arguments)
    COMMANDS["archive"] = (cmd_archive, "write the public archive: every sent issue as a static "
                           "site with Atom feeds (public/)", add_archive_arguments)
    COMMANDS["dkim"] = (cmd_dkim, "make a DKIM key pair and print the DNS record to publish",
                        add_dkim_arguments)


_register_optional_commands()
