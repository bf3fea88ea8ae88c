"""Fetch RSS/Atom feeds over HTTP (or from disk), parse them into FeedItems, choose items."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import httpx
from feedparser.encodings import convert_to_utf8

from newsletter import __version__
from newsletter.config import FeedConfig
from newsletter.errors import FeedError
from newsletter.sanitize import clean_line, plain_text, sanitize_html

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
SUMMARY_CHARS = 320
_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
# feedparser reports these when the declared charset was wrong; the text is still readable.
_RECOVERABLE = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True)
class FeedItem:
    id: str
    title: str  # plain text
    link: str  # absolute http(s)
    summary: str  # sanitised HTML, shortened
    published: datetime | None  # UTC
    feed: str  # the configured feed's name
    section: str  # heading of the section it appears under
    kind: str = "news"


@dataclass(frozen=True)
class CachedFeed:
    etag: str | None
    last_modified: str | None
    body: bytes


@dataclass(frozen=True)
class Fetched:
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


def fetch(feed: FeedConfig, cached: CachedFeed | None = None, *,
          timeout: float = 10.0, max_bytes: int = MAX_BYTES) -> Fetched:
    """Fetch one feed's bytes: conditional GET for URLs, a plain read for local paths."""
    if not feed.is_remote:
        try:
            return Fetched(Path(feed.url).read_bytes(), None, None)
        except OSError as exc:
            raise FeedError(f"cannot read {feed.url}: {exc.strerror}", where=f"feed {feed.name}") \
                from exc
    headers = {"User-Agent": f"newsletter/{__version__}", "Accept":
               "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
    if cached and cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached and cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True,
                          max_redirects=MAX_REDIRECTS) as client:
            return _get(client, feed, headers, cached, timeout, max_bytes)
    except httpx.TimeoutException as exc:
        raise FeedError(f"timed out after {timeout:g} s", where=f"feed {feed.name}") from exc
    except httpx.TooManyRedirects as exc:
        raise FeedError(f"more than {MAX_REDIRECTS} redirects", where=f"feed {feed.name}") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}", where=f"feed {feed.name}") from exc


def _get(client: httpx.Client, feed: FeedConfig, headers: dict, cached: CachedFeed | None,
         timeout: float, max_bytes: int) -> Fetched:
    deadline = time.monotonic() + 3 * timeout  # a server trickling bytes must not hold us forever
    with client.stream("GET", feed.url, headers=headers) as response:
        if response.status_code == 304 and cached:
            return Fetched(cached.body, cached.etag, cached.last_modified, not_modified=True)
        if response.status_code != 200:
            raise FeedError(f"HTTP {response.status_code} from {response.url}",
                            where=f"feed {feed.name}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FeedError(f"too large ({int(declared)} bytes, limit {max_bytes})",
                            where=f"feed {feed.name}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FeedError(f"too large (over {max_bytes} bytes)", where=f"feed {feed.name}")
            if time.monotonic() > deadline:
                raise FeedError(f"too slow (over {3 * timeout:g} s)", where=f"feed {feed.name}")
            chunks.append(chunk)
        return Fetched(b"".join(chunks), response.headers.get("ETag"),
                       response.headers.get("Last-Modified"))


def parse_feed(feed: FeedConfig, body: bytes, *,
               content_type: str = "") -> tuple[list[FeedItem], str]:
    """Parse feed bytes into items; returns (items, warning). Raises FeedError if unusable."""
    # Entity expansion ("billion laughs") can take gigabytes; no real feed needs it. The whole
    # body is searched, NULs removed: a long comment before the DTD, or a UTF-16/32 encoding,
    # would hide a declaration from a scan of the first bytes. feedparser also decodes
    # encodings that are not ASCII-compatible (EBCDIC, UTF-7) before parsing, so the UTF-8 it
    # will parse is searched too.
    headers = {"content-type": content_type} if content_type else None
    if _ENTITY_DECL_RE.search(body.replace(b"\x00", b"")) or _ENTITY_DECL_RE.search(
            convert_to_utf8(dict(headers or {}), body, {})):
        raise FeedError("declares XML entities; refused", where=f"feed {feed.name}")
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=True,
                              resolve_relative_uris=True)
    warning = ""
    if parsed.bozo:
        reason = str(parsed.get("bozo_exception", "malformed")).strip() or "malformed"
        if not isinstance(parsed.get("bozo_exception"), _RECOVERABLE):
            raise FeedError(f"malformed feed: {reason}", where=f"feed {feed.name}")
        warning = f"feed {feed.name}: {reason}"
    if not parsed.entries and not parsed.feed.get("title"):
        raise FeedError("not an RSS or Atom feed", where=f"feed {feed.name}")
    items = [item for entry in parsed.entries if (item := _to_item(feed, entry))]
    return items, warning


def _to_item(feed: FeedConfig, entry: dict) -> FeedItem | None:
    link = entry.get("link", "")
    if not is_http_url(link):
        return None
    title = clean_line(plain_text(entry.get("title", ""))) or link
    summary_html = entry.get("summary", "")
    if entry.get("content") and not summary_html:
        summary_html = entry["content"][0].get("value", "")
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    return FeedItem(
        id=clean_line(entry.get("id") or "") or normalise_link(link),
        title=title[:300],
        link=link,
        summary=shorten_html(sanitize_html(summary_html, absolute_only=True)),
        published=datetime.fromtimestamp(calendar.timegm(published), UTC) if published else None,
        feed=feed.name,
        section=feed.section,
        kind=feed.kind,
    )


def is_http_url(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(
        c in link for c in "\r\n\t <>\"")


def normalise_link(link: str) -> str:
    """Scheme and host lower-cased, fragment and utm_* tracking parameters dropped."""
    parts = urlsplit(link.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_")]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/",
                       urlencode(query), ""))


def shorten_html(fragment: str, limit: int = SUMMARY_CHARS) -> str:
    """Keep rich summaries that are short; shorten long ones to plain text at a word boundary."""
    text = plain_text(fragment)
    if len(text) <= limit:
        return fragment
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.-–— ")
    return "<p>" + _escape(cut) + "…</p>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


def with_section(item: FeedItem, section: str, kind: str) -> FeedItem:
    return replace(item, section=section, kind=kind)
