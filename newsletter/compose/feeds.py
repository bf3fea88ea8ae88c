"""Fetch RSS/Atom feeds over HTTP (or from disk) and parse them into FeedItems."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from xml.sax import SAXParseException

import feedparser
import httpx
from feedparser.encodings import convert_to_utf8

from newsletter import __version__
from newsletter.compose.feed_repair import entry_date, escape_bare_ampersands
from newsletter.config import FeedConfig
from newsletter.errors import FeedError
from newsletter.model import CachedFeed
from newsletter.netguard import NetGuard, Refused, guarded_client, open_url
from newsletter.sanitize import clean_line, plain_text, sanitize_html

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
SUMMARY_CHARS = 320
_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)


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
class Fetched:
    body: bytes
    etag: str | None
    last_modified: str | None
    not_modified: bool = False
    url: str = ""  # where the body came from, after redirects: the base of relative links
    content_type: str = ""  # the HTTP Content-Type, whose charset beats the XML declaration


def fetch(feed: FeedConfig, cached: CachedFeed | None = None, *, timeout: float = 10.0,
          max_bytes: int = MAX_BYTES, guard: NetGuard | None = None) -> Fetched:
    """Fetch one feed's bytes: conditional GET for URLs, a plain read for local paths. Every
    hop of a redirect must pass `guard` (by default: public addresses only)."""
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
    guard = guard or NetGuard()
    try:
        with guarded_client(guard, timeout) as client, open_url(
                client, guard, feed.url, headers, max_redirects=MAX_REDIRECTS) as response:
            return _read(response, feed, cached, timeout, max_bytes)
    except Refused as exc:
        raise FeedError(f"not fetched: {exc}", where=f"feed {feed.name}") from exc
    except httpx.TimeoutException as exc:
        raise FeedError(f"timed out after {timeout:g} s", where=f"feed {feed.name}") from exc
    except httpx.TooManyRedirects as exc:
        raise FeedError(f"more than {MAX_REDIRECTS} redirects", where=f"feed {feed.name}") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}", where=f"feed {feed.name}") from exc


def _read(response: httpx.Response, feed: FeedConfig, cached: CachedFeed | None,
          timeout: float, max_bytes: int) -> Fetched:
    deadline = time.monotonic() + 3 * timeout  # a server trickling bytes must not hold us forever
    if response.status_code == 304 and cached:
        return Fetched(cached.body, cached.etag, cached.last_modified, not_modified=True,
                       url=str(response.url))
    if response.status_code != 200:
        raise FeedError(f"HTTP {response.status_code} from {response.url}",
                        where=f"feed {feed.name}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FeedError(f"too large ({int(declared)} bytes, limit {max_bytes})",
                        where=f"feed {feed.name}")
    chunks, size = [], 0
    for chunk in response.iter_bytes():  # decoded: a gzip bomb counts at its unpacked size
        size += len(chunk)
        if size > max_bytes:
            raise FeedError(f"too large (over {max_bytes} bytes)", where=f"feed {feed.name}")
        if time.monotonic() > deadline:
            raise FeedError(f"too slow (over {3 * timeout:g} s)", where=f"feed {feed.name}")
        chunks.append(chunk)
    return Fetched(b"".join(chunks), response.headers.get("ETag"),
                   response.headers.get("Last-Modified"), url=str(response.url),
                   content_type=response.headers.get("Content-Type", ""))


def self_describing(body: bytes, content_type: str) -> bytes:
    """The body as feedparser decodes it with this Content-Type, re-encoded as UTF-8 with a
    matching XML declaration: a copy kept for a later 304, read back without the header,
    decodes the same (the HTTP charset wins over the declaration, RFC 7303 §3.2)."""
    if "charset=" not in content_type.lower():
        return body
    return convert_to_utf8({"content-type": content_type}, body, {})


def parse_feed(feed: FeedConfig, body: bytes, *, content_type: str = "",
               base_url: str = "") -> tuple[list[FeedItem], str]:
    """Parse feed bytes into items; returns (items, warning). Raises FeedError if unusable.

    CONTENT_TYPE is the HTTP header (its charset is used); BASE_URL, the address the feed
    was fetched from, resolves relative links (RFC 3986 §5.1.3).
    """
    # Entity expansion ("billion laughs") can take gigabytes; no real feed needs it. The whole
    # body is searched, NULs removed: a long comment before the DTD, or a UTF-16/32 encoding,
    # would hide a declaration from a scan of the first bytes. feedparser also decodes
    # encodings that are not ASCII-compatible (EBCDIC, UTF-7) before parsing, so the UTF-8 it
    # will parse is searched too.
    headers = {"content-type": content_type} if content_type else {}
    decoded: dict = {}
    utf8 = convert_to_utf8(dict(headers), body, decoded)
    if _ENTITY_DECL_RE.search(body.replace(b"\x00", b"")) or _ENTITY_DECL_RE.search(utf8):
        raise FeedError("declares XML entities; refused", where=f"feed {feed.name}")
    repaired = 0
    if decoded.get("encoding"):
        fixed, repaired = escape_bare_ampersands(utf8)
        if fixed != utf8:  # parse the repaired UTF-8 copy, so the header must now say UTF-8
            body = fixed
            headers = {"content-type": _CHARSET_RE.sub("", content_type) + "; charset=utf-8"} \
                if content_type else {}
    if base_url:
        headers["content-location"] = base_url
    try:
        parsed = feedparser.parse(body, response_headers=headers or None, sanitize_html=True,
                                  resolve_relative_uris=True)
    except Exception as exc:  # noqa: BLE001 - a parser bug on hostile input is the feed's failure
        # feedparser 6 raises from its element handlers on some out-of-place elements (a stray
        # </height>, a <textInput> inside an <item>): one feed must not end the pull.
        raise FeedError(f"unreadable feed ({type(exc).__name__} in the feed parser: "
                        f"{clean_line(str(exc))[:120]})", where=f"feed {feed.name}") from exc
    problem = _parse_problem(parsed, has_type=bool(content_type))
    if repaired:
        problem = "; ".join(filter(None, [f"{repaired} bare '&' read as '&amp;'", problem]))
    not_xml = isinstance(parsed.get("bozo_exception"), SAXParseException)
    if not parsed.entries and (not parsed.get("version") or not_xml):
        # Nothing recovered: say why. A feed that is well-formed but empty is not a problem.
        raise FeedError(f"malformed feed: {problem}" if problem else "not an RSS or Atom feed",
                        where=f"feed {feed.name}")
    # feedparser's lenient parser reads on past an undefined entity or a bare "&": keep what
    # it recovered, and say so once.
    count = len(parsed.entries)
    kept = f"; kept the {count} {'entry' if count == 1 else 'entries'} that could be read"
    notes = [problem + (kept if not_xml else "")] if problem else []
    converted = [(entry, _to_item(feed, entry, base_url)) for entry in parsed.entries]
    items = [item for _, item in converted if item]
    unlinked = [entry.get("link", "") for entry, item in converted if not item]
    if unlinked:
        notes.append(f"{len(unlinked)} item(s) dropped: no absolute http(s) link "
                     f"(first: {clean_line(unlinked[0])[:80]!r})")
    return items, f"feed {feed.name}: " + "; ".join(notes) if notes else ""


_CHARSET_RE = re.compile(r";\s*charset\s*=[^;]*", re.IGNORECASE)


def _parse_problem(parsed: feedparser.FeedParserDict, *, has_type: bool) -> str:
    """Why feedparser flagged the document ("" when it did not)."""
    exc = parsed.get("bozo_exception")
    if not parsed.bozo or exc is None:
        return ""
    if isinstance(exc, feedparser.NonXMLContentType) and not has_type:
        return ""  # no Content-Type at all (a base URL alone was given): nothing to report
    if isinstance(exc, SAXParseException):
        return f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    return clean_line(str(exc)) or type(exc).__name__


def _to_item(feed: FeedConfig, entry: dict, base_url: str = "") -> FeedItem | None:
    link = entry.get("link", "").strip()
    if base_url and link:
        link = urljoin(base_url, link)
    if not is_http_url(link):
        return None
    title = clean_line(plain_text(entry.get("title", ""))) or link
    summary_html = entry.get("summary", "")
    if entry.get("content") and not summary_html:
        summary_html = entry["content"][0].get("value", "")
    return FeedItem(
        id=clean_line(entry.get("id") or "") or normalise_link(link),
        title=title[:300],
        link=link,
        summary=shorten_html(sanitize_html(summary_html, absolute_only=True)),
        published=entry_date(entry),
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
