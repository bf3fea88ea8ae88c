"""new, pull, build and check: the commands that write and look at a draft before it is sent."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from newsletter import safe_files
from newsletter.audience.tokens import secret_from_env
from newsletter.cli.context import (
    config_of,
    issue_arg,
    now_arg,
    open_store,
    parse_now,
    resolve_draft,
)
from newsletter.cli.output import plural, say, warn
from newsletter.compose.drafts import check_issue_id, draft_path, load_draft
from newsletter.compose.edition import compose
from newsletter.compose.fonts import font_warning
from newsletter.compose.preview import SAMPLE_EMAIL, write_preview
from newsletter.compose.pull import pull
from newsletter.compose.translate import new_translation
from newsletter.config import Config
from newsletter.deliver.issue_check import check_edition, draft_error_lines
from newsletter.deliver.segmenting import as_reader_with
from newsletter.deliver.send import envelope_for, unsubscribe_url_maker
from newsletter.errors import DraftError, InputError


def cmd_new(args: argparse.Namespace) -> int:
    config = config_of(args)
    now = parse_now(args.now, config).astimezone(config.timezone)
    issue = args.issue or next_month(now)
    if "." in issue:
        return _new_translation(config, issue)
    check_issue_id(issue)
    path = draft_path(config.issues_dir, issue)
    template = config.issues_dir / "_template.md"
    if path.exists():
        raise InputError("already exists; edit it, or delete it to start again", where=str(path))
    try:
        text = template.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("no draft template", where=str(template)) from exc
    safe_files.write_text(path, text.replace("SEND_AT", f"{issue}-01T09:00"), root=config.root)
    say(f"created {path} from {template.name}: write it, then `newsletter pull {issue}`")
    return 0


def _new_translation(config: Config, issue: str) -> int:
    base, _, language = issue.partition(".")
    path = new_translation(config.issues_dir, base, language.lower(), config.default_language,
                           root=config.root)
    say(f"created {path} from {base}.md (status draft, translated_from set per section): "
        f"translate it, then `newsletter pull {base}.{language.lower()}` and "
        f"`newsletter check {base}.{language.lower()}`")
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
        say(f"  {section}: {plural(count, 'item')}")
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


def cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = config_of(args)
    with open_store(config) as conn:
        composed = compose(config, resolve_draft(config, args.issue), conn,
                           now=parse_now(args.now, config))
    _report_pull(composed)
    stem, seen_as = composed.draft.path.stem, ""
    if args.tags is not None:  # a segment's variant instead of the editor's view (every part)
        composed, variant = as_reader_with(config, composed, args.tags)
        stem += f"+{variant.replace(',', '+') or 'plain'}"
        seen_as = f" as a reader tagged {args.tags!r}" if args.tags else " as an untagged reader"
    edition = composed.edition
    out = Path(args.out) if args.out else config.root / "build" / stem
    url_of = unsubscribe_url_maker(config, secret_from_env()[0])
    if not args.no_screenshots and (no_font := font_warning(edition.language)):
        warn(no_font)  # Chromium draws a script without a font as empty boxes, silently
    files = write_preview(edition, envelope_for(config), url_of(SAMPLE_EMAIL), out,
                          screenshots=not args.no_screenshots, allow_hosts=config.allow_hosts)
    for f in files.files:
        say(f"  {f}  {f.stat().st_size / 1024:.1f} KB")
    if files.note:
        warn(files.note)
    html_kb = len(edition.html.encode()) / 1024
    say(f"built {composed.draft.issue} ({edition.language}){seen_as}: "
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
        checked = check_edition(config, path, parse_now(args.now, config))
    except DraftError as exc:
        for line in draft_error_lines(exc):
            print(line)
        say(f"check {path.name}: {len(exc.problems)} error(s), 0 warning(s)")
        return 1
    problems = checked.problems
    for found in problems:
        print(found)
    for line in checked.segments:
        say(line)
    errors = sum(p.severity == "error" for p in problems)
    say(f"check {path.name}: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def add_new_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("issue", nargs="?", metavar="ISSUE",
                     help="YYYY-MM (default: next month), or YYYY-MM.LANG: a translation of "
                          "the default edition")
    now_arg(cmd)


def add_pull_arguments(cmd: argparse.ArgumentParser) -> None:
    issue_arg(cmd)
    now_arg(cmd)
    cmd.add_argument("--timeout", type=float, default=10.0, help="seconds per feed (default 10)")


def add_build_arguments(cmd: argparse.ArgumentParser) -> None:
    issue_arg(cmd)
    cmd.add_argument("--out", help="output folder (default: build/ISSUE)")
    cmd.add_argument("--no-screenshots", action="store_true", help="skip the Chromium screenshots")
    cmd.add_argument("--tags", metavar="TAGS",
                     help="show it as a reader with these tags gets it (e.g. geneva;parking; "
                          "'' for an untagged reader); default: every {only=...} part")
    now_arg(cmd)


def add_check_arguments(cmd: argparse.ArgumentParser) -> None:
    issue_arg(cmd)
    now_arg(cmd)
