"""Compose one edition: draft + snapshot (pulled when missing) -> rendered, inlined Edition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.compose.drafts import Draft, load_draft
from newsletter.compose.pull import PullResult, pull
from newsletter.compose.render import render_edition
from newsletter.compose.snapshot import Snapshot, read_snapshot, snapshot_path
from newsletter.config import Config
from newsletter.model import Edition
from newsletter.store.db import Db


@dataclass(frozen=True)
class Composed:
    draft: Draft
    snapshot: Snapshot
    edition: Edition
    pulled: PullResult | None  # set when the snapshot had to be pulled just now


def compose(config: Config, draft_path: Path, conn: Db | None, *,
            now: datetime | None = None, write: bool = True,
            pull_missing: bool = True) -> Composed:
    """Render an edition from its draft and snapshot; pull the feeds first if there is none
    (pull_missing=False, as `check`: render it without feed items instead)."""
    draft = load_draft(draft_path, timezone=config.timezone,
                       default_language=config.default_language)
    snap_file = snapshot_path(draft.path)
    pulled = None
    moment = now or datetime.now(UTC)
    if snap_file.exists():
        snap = read_snapshot(snap_file)
    elif not pull_missing or conn is None:
        snap = Snapshot(draft.issue, moment, moment, moment, ())
    else:
        pulled = pull(config, draft, conn, now=now or datetime.now(UTC), write=write)
        snap = pulled.snapshot
    return Composed(draft, snap, render_edition(config, draft, snap.items), pulled)


def edition_language(language: str, available: set[str], default: str) -> str:
    """The edition a subscriber gets: their language, else its primary subtag (fr-CA -> fr),
    else the default edition."""
    language = (language or "").lower()
    available = {a.lower() for a in available}
    if language in available:
        return language
    primary = language.split("-")[0]
    return primary if primary in available else default
