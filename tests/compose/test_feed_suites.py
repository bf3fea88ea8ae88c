"""feedparser's own sanitize test feeds (tests/corpora/feeds) through parse_feed: general
properties only, since a newsletter keeps less markup than feedparser does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.compose.feeds import fetch, parse_feed
from newsletter.config import FeedConfig
from newsletter.errors import FeedError
from newsletter.netguard import NetGuard

CORPUS = Path(__file__).parent.parent / "corpora" / "feeds"
FILES = sorted(CORPUS.glob("*.xml"))
UNSAFE_TAG = re.compile(r"<\s*/?\s*(script|style|iframe|object|embed|form|applet|frame|meta)\b",
                        re.IGNORECASE)
UNSAFE_ATTR = re.compile(r"\son\w+\s*=", re.IGNORECASE)
# The sanitizer writes its own width style on images; a style that hides or overlays is unsafe.
HIDING_STYLE = re.compile(r"style\s*=\s*[\"'][^\"']*(display|visibility|position|opacity|z-index)",
                          re.IGNORECASE)
URL_ATTR = re.compile(r"(?:href|src)\s*=\s*[\"']([^\"']*)", re.IGNORECASE)
UNSAFE_URL = re.compile(r"(href|src)\s*=\s*[\"']?\s*(javascript|vbscript|data):", re.IGNORECASE)


def with_link(body: bytes) -> bytes:
    """The upstream cases carry no item link, which this project requires; add one."""
    return body.replace(b"<entry>", b'<entry><link rel="alternate" href="http://example.com/a"/>')


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_suite_feed_items_are_sanitised_one_line_text(path):
    feed = FeedConfig(name="suite", url="http://example.com/feed", section="News")
    try:
        items, _ = parse_feed(feed, with_link(path.read_bytes()))
    except FeedError as exc:  # garbage may be refused, with a one-line message
        assert "\n" not in str(exc)
        return
    for item in items:
        assert "\n" not in item.title and "<" not in item.title, item.title
        assert not UNSAFE_TAG.search(item.summary), item.summary
        assert not UNSAFE_ATTR.search(item.summary), item.summary
        assert not HIDING_STYLE.search(item.summary), item.summary
        assert not UNSAFE_URL.search(item.summary), item.summary
        for url in URL_ATTR.findall(item.summary):  # relative ones resolved or dropped
            assert url.startswith(("http://", "https://")), item.summary
        assert item.link.startswith(("http://", "https://"))
        assert item.published is None or item.published.utcoffset() is not None


def test_suite_feeds_fetched_over_http_parse_the_same(feed_server):
    # The real fetch path: HTTP on 127.0.0.1, the body and its URL handed to parse_feed.
    for path in FILES[:6]:
        url = feed_server.route(f"/{path.name}", with_link(path.read_bytes()))
        config = FeedConfig(name="suite", url=url, section="News")
        got = fetch(config, guard=NetGuard(frozenset({"127.0.0.1"})))
        items, _ = parse_feed(config, got.body, content_type=got.content_type, base_url=got.url)
        for item in items:
            assert not UNSAFE_TAG.search(item.summary) and not UNSAFE_ATTR.search(item.summary)


def test_a_draft_fed_by_suite_feeds_builds_an_email_with_no_unsafe_markup(project, feed_server,
                                                                         tmp_path):
    # End to end: each corpus feed served on 127.0.0.1 and dated inside the 2026-11 window.
    tables = []
    for n, path in enumerate(FILES[:8]):
        body = path.read_bytes().replace(b"<entry>", (
            f'<entry><link rel="alternate" href="http://example.com/{n}"/>'
            "<issued>2026-10-15T12:00:00Z</issued>").encode())
        url = feed_server.route(f"/{path.name}", body)
        tables.append(project.feed_table(f"suite{n}", url, "News in brief", max_items=1))
    project.write_config("".join(tables))
    text = project.config_path.read_text(encoding="utf-8")
    if "[network]" not in text:  # the feed server is on 127.0.0.1, allowed as an intranet host
        project.config_path.write_text(text + '\n[network]\nallow_hosts = ["127.0.0.1"]\n',
                                       encoding="utf-8")
    project.draft()
    out = tmp_path / "out"
    result = project.cli("build", "2026-11", "--no-screenshots", "--out", str(out),
                         "--now", "2026-11-22T12:00")
    assert result.code == 0, result.err
    html = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert html
    body = html.split("<body", 1)[-1]  # the template's own <head><style> is not feed content
    # The corpus feeds that have entries (six of the first eight) reached the email.
    assert "pulled 6 items" in result.out and "http://example.com/2" in body
    assert not re.search(r"<\s*(script|iframe|object|embed|form|applet|frame)\b", body, re.I)
    assert not UNSAFE_ATTR.search(body) and not UNSAFE_URL.search(body)
