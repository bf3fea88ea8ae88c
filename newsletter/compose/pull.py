"""`newsletter pull`: fetch every feed of an issue, choose its items, write the snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from newsletter.compose.drafts import Draft
from newsletter.compose.feeds import (
    FeedItem,
    fetch,
    is_http_url,
    normalise_link,
    parse_feed,
    self_describing,
)
from newsletter.compose.snapshot import Snapshot, read_snapshot, snapshot_path, write_snapshot
from newsletter.config import Config, FeedConfig
from newsletter.errors import FeedError, InputError
from newsletter.netguard import NetGuard
from newsletter.sanitize import plain_text
from newsletter.store import feeds as store_feeds
from newsletter.store.db import Db


@dataclass(frozen=True)
class PullResult:
    snapshot: Snapshot
    path: Path
    warnings: tuple[str, ...]


def issue_window(draft: Draft, now: datetime, issues_dir: Path) -> tuple[datetime, datetime]:
    """[start, end) in UTC: from where the previous issue's window ended to this issue's send time.

    Consecutive windows tile without gaps or overlaps, so every item appears in exactly one issue.
    """
    end = min(draft.send_at, now) if draft.send_at else now
    start = _previous_window_end(draft, issues_dir)
    if start is None:
        year, month = int(draft.issue[:4]), int(draft.issue[5:])
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = datetime(year, month, 1, tzinfo=UTC)
    return start.astimezone(UTC), max(end.astimezone(UTC), start.astimezone(UTC))


def _previous_window_end(draft: Draft, issues_dir: Path) -> datetime | None:
    suffix = "" if draft.path.name.count(".") == 1 else "." + draft.path.name.split(".")[1]
    pattern = f"[0-9][0-9][0-9][0-9]-[0-9][0-9]{suffix}.items.yaml"
    earlier = sorted(p for p in issues_dir.glob(pattern) if p.name[:7] < draft.issue)
    for path in reversed(earlier):
        try:
            return read_snapshot(path).window_end
        except InputError:
            continue
    return None


def earlier_item_ids(draft: Draft, issues_dir: Path) -> set[str]:
    """Ids and links of items in the snapshots of earlier issues: never repeat an item."""
    seen: set[str] = set()
    for path in issues_dir.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]*.items.yaml"):
        if path.name[:7] < draft.issue:
            try:
                seen.update(x for i in read_snapshot(path).items
                            for x in (i.id, normalise_link(i.link)))
            except InputError:
                continue
    return seen


def pull(config: Config, draft: Draft, conn: Db, *, now: datetime | None = None,
         timeout: float = 10.0, write: bool = True) -> PullResult:
    """Fetch the draft's feeds, keep the new items in its window, write the snapshot."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start, end = issue_window(draft, now, config.issues_dir)
    seen = earlier_item_ids(draft, config.issues_dir) | store_feeds.sent_item_ids(conn, draft.issue)
    items: list[FeedItem] = []
    warnings: list[str] = []
    guard = NetGuard(config.allow_hosts)
    for feed in selected_feeds(config, draft):
        try:
            fetched_items, warning = _fetch_one(conn, feed, timeout, guard)
        except FeedError as exc:
            warnings.append(str(exc))
            continue
        if warning:
            warnings.append(warning)
        items += choose_items(fetched_items, feed, start=start, end=end, seen=seen,
                              exclude=draft.exclude)
    snap = Snapshot(draft.issue, now, start, end, tuple(items))
    path = snapshot_path(draft.path)
    if write:  # a dry run looks, and leaves the snapshot to the real send
        write_snapshot(path, snap)
    return PullResult(snap, path, tuple(warnings))


def selected_feeds(config: Config, draft: Draft) -> list[FeedConfig]:
    """The draft's feeds, in its language: a feed configured with this edition's `language`
    replaces the default feed of the same name; otherwise the default one is used, with its
    section title translated when `translations` gives one."""
    defaults = {f.name: f for f in config.feeds if not f.language}
    own = {f.name: f for f in config.feeds if f.language == draft.language}
    names = list(draft.feeds) if draft.feeds is not None else list(defaults)
    unknown = [name for name in names if name not in defaults and name not in own]
    if unknown:
        raise InputError(f"front matter: 'feeds' names unknown feed(s) {', '.join(unknown)} "
                         f"(configured: {', '.join(defaults) or 'none'})",
                         where=str(draft.path))
    chosen = []
    for name in names:
        feed = own.get(name) or defaults[name]
        chosen.append(replace(feed, section=feed.section_in(draft.language)))
    return chosen


def _fetch_one(conn: Db, feed: FeedConfig, timeout: float,
               guard: NetGuard) -> tuple[list[FeedItem], str]:
    cached = store_feeds.get_feed_cache(conn, feed.url) if feed.is_remote else None
    fetched = fetch(feed, cached, timeout=timeout, guard=guard)
    items, warning = parse_feed(feed, fetched.body, content_type=fetched.content_type,
                                base_url=fetched.url)
    if feed.is_remote and not fetched.not_modified and (fetched.etag or fetched.last_modified):
        # Kept without its headers: store the charset's decoding in the bytes themselves.
        store_feeds.put_feed_cache(conn, feed.url, fetched.etag, fetched.last_modified,
                             self_describing(fetched.body, fetched.content_type))
    return items, warning


def choose_items(items: Iterable[FeedItem], feed: FeedConfig, *, start: datetime, end: datetime,
                 seen: set[str], exclude: Iterable[str]) -> list[FeedItem]:
    """The items of one feed for one issue: in [start, end), new, not excluded, on topic.

    Only the items kept (after max_items) are added to `seen`, so an item this feed had no
    room for can still come through another feed.
    """
    dropped = set(exclude) | {normalise_link(x) for x in exclude if is_http_url(x)}
    candidates: dict[str, FeedItem] = {}
    keys_taken: set[str] = set()
    for item in items:
        key = normalise_link(item.link)
        if {item.id, key} & (seen | dropped | keys_taken):
            continue
        if item.published and not start <= item.published < end:
            continue
        if feed.keywords and not any(k in f"{item.title} {plain_text(item.summary)}".lower()
                                     for k in feed.keywords):
            continue
        keys_taken.update((item.id, key))
        candidates[item.id] = item
    newest_first = feed.kind != "events"
    chosen = sorted(candidates.values(), key=lambda i: i.published or end,
                    reverse=newest_first)[: feed.max_items]
    for item in chosen:
        seen.update((item.id, normalise_link(item.link)))
    return chosen
