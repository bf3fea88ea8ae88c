"""What `check` finds for one edition, as data: the command prints it, the live preview shows it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.compose.check import Problem, check_issue
from newsletter.compose.check_editions import check_editions
from newsletter.compose.drafts import draft_path
from newsletter.compose.edition import Composed, compose
from newsletter.compose.snapshot import snapshot_path
from newsletter.config import Config
from newsletter.deliver.deliverability import unsigned_bulk_warning
from newsletter.deliver.schedule_rule import check_warning
from newsletter.deliver.segment_report import check_segments
from newsletter.errors import DraftError
from newsletter.netguard import Resolver, system_resolver
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import database_url, open_store, store_exists
from newsletter.store.editions import is_frozen


@dataclass(frozen=True)
class Checked:
    composed: Composed  # rendered without feed items when there is no snapshot
    problems: tuple[Problem, ...]
    has_snapshot: bool
    segments: tuple[str, ...] = ()  # who would get which variant now (segment_report)


def check_edition(config: Config, path: Path, now: datetime, *,
                  resolve: Resolver = system_resolver) -> Checked:
    """Every problem with the edition at PATH. Writes nothing: no pull, no snapshot, and no
    database it would have to create. A broken draft raises DraftError (draft_error_lines).
    RESOLVE looks up image and link hosts (whether subscribers can reach them)."""
    composed = compose(config, path, None, now=now, write=False, pull_missing=False)
    languages: dict[str, int] = {}
    frozen = False  # an issue already sent is past its schedule by nature
    url = database_url(config)
    if store_exists(url):  # check creates no database (a SQLite file, or any server URL)
        with contextlib.closing(open_store(url)) as conn:
            languages = store_subscribers.subscriber_languages(conn)
            frozen = is_frozen(conn, composed.draft.issue)
    snap_file = snapshot_path(composed.draft.path)
    problems = check_issue(composed.draft, composed.edition,
                           item_count=len(composed.snapshot.items), resolve=resolve)
    if not snap_file.exists():  # the feeds' items are part of what is checked
        problems = [p for p in problems if not p.message.startswith("no feed items")]
        problems.insert(0, Problem("error", str(snap_file), "no snapshot: run `newsletter pull "
                                   f"{composed.draft.path.stem}` first (check fetches and "
                                   "writes nothing)"))
    problems += check_editions(composed.draft, config.default_language, languages,
                               draft_path(config.issues_dir, composed.draft.issue))
    where, late = check_warning(composed.draft, now, config.timezone, frozen=frozen,
                                default_language=config.default_language)
    if late:
        problems.append(Problem("warning", where, late))
    if unsigned := unsigned_bulk_warning(config, bool(os.environ.get("NEWSLETTER_SMTP_URL"))):
        problems.append(Problem("warning", str(config.root / "newsletter.toml"), unsigned))
    segments = check_segments(config, composed, now)  # and the sign-off
    problems += [Problem(*found) for found in segments.findings]
    return Checked(composed, tuple(problems), snap_file.exists(), segments.lines)


def draft_error_lines(exc: DraftError) -> list[str]:
    """One `FILE:LINE: error: TEXT` line per problem of a broken draft, as check prints them."""
    lines = []
    for problem in exc.problems:
        line, text = ("", problem)
        if problem.startswith("line "):
            line, _, text = problem.partition(": ")
        where = f"{exc.where}:{line.removeprefix('line ')}" if line else exc.where
        lines.append(f"{where}: error: {text}")
    return lines
