"""Feeds built to hurt, through parse_feed: encodings that lie, dates that cannot be, entity
attacks, and content too large or too deep. Project-authored companions to the public suites
in test_feed_suites.py, each aimed at one thing those suites leave out."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from feed_suite_cases import CORPUS
from nesting import nh3_depths

from newsletter.compose.feeds import SUMMARY_CHARS, parse_feed
from newsletter.config import FeedConfig
from newsletter.errors import FeedError
from newsletter.sanitize import MAX_DEPTH, plain_text

FEED = FeedConfig(name="hostile", url="http://example.com/feed.xml", section="News")
ITEM = ("<item><title>{title}</title><link>http://example.com/1</link>"
        "<description>{summary}</description>{extra}</item>")


def rss(title: str = "T", summary: str = "S", extra: str = "", prolog: str = "",
        encoding: str = "utf-8") -> str:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    return (f'{declaration}{prolog}<rss version="2.0"><channel><title>F</title>'
            + ITEM.format(title=title, summary=summary, extra=extra) + "</channel></rss>")


def one(body: bytes, content_type: str = ""):  # noqa: ANN201 - the one FeedItem
    items, _ = parse_feed(FEED, body, content_type=content_type, base_url=FEED.url)
    assert len(items) == 1
    return items[0]


# --- encodings ---------------------------------------------------------------------------------

CAFE = "Caf\u00e9 \u201cquoted\u201d \u2013 \u20ac5"


@pytest.mark.parametrize(("label", "body", "content_type"), [
    ("utf-16-le with BOM", b"\xff\xfe" + rss(CAFE, encoding="utf-16").encode("utf-16-le"), ""),
    ("utf-16-be with BOM", b"\xfe\xff" + rss(CAFE, encoding="utf-16").encode("utf-16-be"), ""),
    ("utf-16-le, no BOM", rss(CAFE, encoding="utf-16le").encode("utf-16-le"), ""),
    ("utf-32-le with BOM", b"\xff\xfe\x00\x00" + rss(CAFE, encoding="utf-32").encode("utf-32-le"),
     ""),
    ("utf-8 BOM beats a latin-1 declaration",  # XML 1.0 Appendix F: the BOM decides
     b"\xef\xbb\xbf" + rss(CAFE, encoding="iso-8859-1").encode("utf-8"), ""),
    ("windows-1252 quotes declared iso-8859-1",  # what the WHATWG Encoding standard reads it as
     rss(CAFE, encoding="iso-8859-1").encode("windows-1252"), ""),
    ("windows-1252 bytes declared utf-8", rss(CAFE).encode("windows-1252"), ""),
    ("HTTP charset beats the declaration",  # RFC 7303 section 3.2
     rss(CAFE, encoding="utf-8").encode("windows-1252"),
     "application/rss+xml; charset=windows-1252"),
    ("no declaration, utf-8", rss(CAFE, encoding="").encode("utf-8"), ""),
])
def test_text_in_any_encoding_reads_without_mojibake(label, body, content_type):
    got = one(body, content_type)
    assert got.title == CAFE, label


def test_bytes_that_are_no_character_become_replacement_characters_not_a_traceback():
    body = rss("a \udcff b", encoding="utf-8").encode("utf-8", "surrogateescape")
    assert one(body).title in ("a \ufffd b", "a \u00ff b")  # replaced, or read as windows-1252


# --- dates -------------------------------------------------------------------------------------


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


@pytest.mark.parametrize(("tag", "text", "expected"), [
    ("pubDate", "Tue, 10 Nov 2026 09:00:00 GMT", utc(2026, 11, 10, 9)),
    ("pubDate", "Tue, 10 Nov 2026 09:00:00 -0500", utc(2026, 11, 10, 14)),
    ("pubDate", "Tue, 10 Nov 2026 09:00:00 EST", utc(2026, 11, 10, 14)),
    ("pubDate", "10 Nov 2026 09:00 +0100", utc(2026, 11, 10, 8)),  # no weekday, no seconds
    ("pubDate", "Tue, 10 Nov 26 09:00:00 GMT", utc(2026, 11, 10, 9)),  # two-digit year
    ("pubDate", "Tue, 10 Nov 2026 09:00:00", (None, utc(2026, 11, 10, 9))),  # no zone
    ("pubDate", "Tue, 10 Nov 2026 09:00:00 -0000", utc(2026, 11, 10, 9)),
    ("pubDate", "Tuesday, 10-Nov-26 09:00:00 GMT", (None, utc(2026, 11, 10, 9))),  # RFC 850
    ("dc:date", "2026-11-10T09:00:00+14:00", utc(2026, 11, 9, 19)),
    ("dc:date", "2026-11-10T09:00:00.123456Z", utc(2026, 11, 10, 9)),
    ("dc:date", "2026-11-10", utc(2026, 11, 10)),
    ("pubDate", "Mon, 30 Feb 2026 10:00:00 GMT", None),  # no such day
    ("dc:date", "2026-02-30T10:00:00Z", None),
    ("dc:date", "2026-10-32T10:00:00Z", None),
    ("dc:date", "2026-13-01T10:00:00Z", None),
    ("dc:date", "2026-11-10T25:00:00Z", None),
    ("dc:date", "0000-01-01T00:00:00Z", None),  # before year 1: no datetime holds it
    ("pubDate", "Fri, 31 Dec 9999 23:59:59 -1200", None),  # after 9999 once in UTC
    ("dc:date", "9999-12-31T23:59:59-12:00", None),
    ("pubDate", "yesterday", None),
    ("pubDate", "", None),
])
def test_dates_are_utc_or_none_never_a_traceback_and_never_a_made_up_day(tag, text, expected):
    # A tuple lists the acceptable readings of a date a lenient reader may or may not take.
    extra = f'<{tag} xmlns:dc="http://purl.org/dc/elements/1.1/">{text}</{tag}>'
    got = one(rss(extra=extra).encode()).published
    assert got in (expected if isinstance(expected, tuple) else (expected,)), text
    assert got is None or got.utcoffset() == timedelta(0)


# --- entities and DTDs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["billion_laughs", "xxe_local_file", "xxe_parameter_entity"])
def test_entity_attacks_are_refused_in_bounded_memory(name):
    body = (CORPUS / "attacks" / f"{name}.xml").read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(FeedError, match="declares XML entities; refused"):
            parse_feed(FEED, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # expanded, the billion laughs is gigabytes


def test_a_quadratic_blowup_is_refused_without_expanding_it():
    big = "x" * 100_000  # 100 kB, referenced 10,000 times: 1 GB if expanded
    body = rss("&big;" * 10_000, prolog=f'<!DOCTYPE rss [<!ENTITY big "{big}">]>').encode()
    with pytest.raises(FeedError, match="declares XML entities"):
        parse_feed(FEED, body)


def test_an_external_dtd_is_never_fetched(feed_server):
    dtd = feed_server.route("/rss.dtd", b'<!ENTITY secret "leaked">')
    body = rss("external &amp; fine", prolog=f'<!DOCTYPE rss SYSTEM "{dtd}">').encode()
    assert one(body).title == "external & fine"
    assert feed_server.requests_for("/rss.dtd") == []


def test_xinclude_and_utf7_stay_inert():
    for name in ("xinclude", "utf7_script"):
        items, _ = parse_feed(FEED, (CORPUS / "attacks" / f"{name}.xml").read_bytes())
        for got in items:
            assert "root:" not in got.summary and "<script" not in got.summary.lower()
            assert "onerror" not in got.summary.lower() and "<" not in got.title


# --- size and depth ----------------------------------------------------------------------------


def test_a_huge_summary_is_cut_to_plain_text():
    body = rss(summary="&lt;p&gt;" + "word " * 800_000 + "&lt;/p&gt;").encode()  # 4 MB
    got = one(body)
    assert len(plain_text(got.summary)) <= SUMMARY_CHARS + 1 and got.summary.endswith("…</p>")


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_markup_is_no_traceback_and_never_reaches_nh3_deep(depth, monkeypatch):
    # html5ever builds a tree in time quadratic in nesting: 100,000 levels took 36 s.
    depths = nh3_depths(monkeypatch)
    html = "<div>" * depth + "<b>deep</b>" + "</div>" * depth
    body = rss(summary=f"<![CDATA[{html}]]>").encode()
    got = one(body)
    assert depths and max(depths) <= MAX_DEPTH + 1, max(depths)
    assert "<div" not in got.summary and "deep" in got.summary


def test_deeply_nested_xml_elements_are_no_traceback():
    depth = 50_000
    body = rss(extra="<x:a xmlns:x='urn:x'>" * depth + "</x:a>" * depth).encode()
    assert one(body).title == "T"


def test_many_entries_all_come_through():
    items = "".join(ITEM.format(title=f"n{n}", summary="s", extra="").replace("/1<", f"/{n}<")
                    for n in range(5_000))
    body = f'<rss version="2.0"><channel><title>F</title>{items}</channel></rss>'.encode()
    got, _ = parse_feed(FEED, body)
    assert len(got) == 5_000 and len({i.link for i in got}) == 5_000
