"""Decide what a send run will do, before anything is sent: which issues are due, which are open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.compose.drafts import Draft, load_draft
from newsletter.config import Config
from newsletter.deliver.schedule_rule import held_line, off_schedule
from newsletter.errors import InputError, NewsletterError
from newsletter.store.db import Db
from newsletter.store.editions import base_issue, is_frozen
from newsletter.store.ledger import open_issues as ledger_open_issues

_DEFAULT_DRAFT_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])\.md$")


@dataclass(frozen=True)
class Plan:
    to_freeze: tuple[Draft, ...]  # ready, due, not started: freeze then send
    open_issues: tuple[str, ...]  # started earlier with rows still pending or deferred
    waiting: tuple[str, ...]  # ready but send_at is later: "2026-12 at 2026-12-01 09:00 CET"
    problems: tuple[str, ...]  # drafts that could not be read, issues held off schedule
    off_schedule: tuple[tuple[str, str], ...] = ()  # (issue, why) held back (send_safety)


def default_drafts(issues_dir: Path) -> list[Path]:
    return sorted(p for p in issues_dir.glob("*.md") if _DEFAULT_DRAFT_RE.match(p.name))


def declared_status(path: Path) -> str:
    """The `status:` line of a draft that does not load, read leniently ("" if unreadable)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return ""
    match = re.search(r"^status:\s*['\"]?(\w+)", text.split("\n---", 1)[0], re.MULTILINE)
    return match.group(1) if match else ""


def plan_run(config: Config, conn: Db, now: datetime, *,
             only: Draft | None = None, off_schedule_ok: bool = False) -> Plan:
    """Due = status ready and send_at <= now (in the configured zone) and not yet frozen.
    A due issue off its schedule (send_at long past, or far from its month) is held with a
    problem line unless off_schedule_ok (`--now`, `--yes`, or a yes at the terminal)."""
    to_freeze, waiting, problems, held = [], [], [], []
    if only is not None:
        if only.status != "ready":
            raise InputError("status is 'draft'; set `status: ready` to send it",
                             where=str(only.path))
        drafts = [only]
    else:
        drafts = []
        for path in default_drafts(config.issues_dir):
            try:
                drafts.append(load_draft(path, timezone=config.timezone,
                                         default_language=config.default_language))
            except NewsletterError as exc:
                if declared_status(path) != "draft":  # work in progress may be incomplete
                    problems.append(str(exc))
    for draft in drafts:
        if draft.status != "ready" or is_frozen(conn, draft.issue):
            continue
        if only is None and draft.send_at and draft.send_at > now:
            waiting.append(f"{draft.issue} at {draft.send_at:%Y-%m-%d %H:%M %Z}")
            continue
        if not off_schedule_ok and (why := off_schedule(draft, now, config.timezone)):
            held.append((draft.issue, why))
            problems.append(held_line(draft.issue, why))
            continue
        to_freeze.append(draft)
    open_issues = [i for i in ledger_open_issues(conn)
                   if only is None or base_issue(i) == only.issue]
    return Plan(tuple(to_freeze), tuple(open_issues), tuple(waiting), tuple(problems),
                tuple(held))


def translations_of(config: Config, draft: Draft) -> tuple[list[Draft], list[str]]:
    """The ready language editions beside a default draft (issues/YYYY-MM.LANG.md), and the
    problems of those that are ready (or may be) but do not load."""
    editions, problems = [], []
    for path in sorted(config.issues_dir.glob(f"{draft.issue}.*.md")):
        if path.name.endswith(".items.md") or path.name.count(".") != 2:
            continue
        try:
            edition = load_draft(path, timezone=config.timezone,
                                 default_language=config.default_language)
        except NewsletterError as exc:
            if declared_status(path) != "draft":
                problems.append(str(exc))
            continue
        if edition.status == "ready" and edition.language != draft.language:
            editions.append(edition)
    return editions, problems
