"""The feed cache (conditional GET between pulls) and the feed items earlier issues sent."""

from __future__ import annotations

from newsletter.model import CachedFeed
from newsletter.store.db import Db
from newsletter.store.stamps import now_iso


def get_feed_cache(db: Db, url: str) -> CachedFeed | None:
    row = db.execute("SELECT etag, last_modified, body FROM feed_cache WHERE url = ?",
                     (url,)).fetchone()
    return CachedFeed(row["etag"], row["last_modified"], row["body"]) if row else None


def put_feed_cache(db: Db, url: str, etag: str | None,
                   last_modified: str | None, body: bytes) -> None:
    db.execute(
        "INSERT INTO feed_cache (url, etag, last_modified, body, fetched_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
        "last_modified = excluded.last_modified, body = excluded.body, "
        "fetched_at = excluded.fetched_at",
        (url, etag, last_modified, body, now_iso()))


def sent_item_ids(db: Db, before_issue: str) -> set[str]:
    """Feed item ids (and normalised links) that went out in an earlier issue."""
    return {r[0] for r in db.execute("SELECT item_id FROM sent_items WHERE issue < ?",
                                     (before_issue,))}
