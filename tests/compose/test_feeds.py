"""Feeds over a real local HTTP server: fetch, parse, sanitise, choose items for an issue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.compose.feeds import FeedItem, normalise_link, parse_feed
from newsletter.compose.feeds import fetch as guarded_fetch
from newsletter.compose.pull import choose_items, pull
from newsletter.config import FeedConfig
from newsletter.errors import FeedError
from newsletter.model import CachedFeed
from newsletter.netguard import NetGuard
from newsletter.store import feeds as store_feeds

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
IN_WINDOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)  # the 2026-11 window: 1 Oct to 5 Nov 08:00
NEWS = FeedConfig(name="news", url="http://127.0.0.1/unused", section="News in brief")


# The feed server listens on 127.0.0.1: allowed the way an operator allows an intranet host.
LOCAL = NetGuard(frozenset({"127.0.0.1"}))


def fetch(config: FeedConfig, *args: object, **kwargs: object):  # noqa: ANN201 - Fetched
    return guarded_fetch(config, *args, guard=LOCAL, **kwargs)  # type: ignore[arg-type]


def allow_local(config_path) -> None:  # noqa: ANN001
    """[network] allow_hosts = ["127.0.0.1"] in the project's config, once."""
    text = config_path.read_text(encoding="utf-8")
    if "[network]" not in text:
        config_path.write_text(text + '\n[network]\nallow_hosts = ["127.0.0.1"]\n',
                               encoding="utf-8")


@pytest.fixture
def project(project):  # noqa: ANN001, ANN201 - the conftest project, its feed server allowed
    write_config = project.write_config

    def write_allowing_local(feeds: str):  # noqa: ANN202
        path = write_config(feeds)
        allow_local(path)
        return path

    project.write_config = write_allowing_local
    allow_local(project.config_path)
    return project


def feed(url: str = "http://127.0.0.1/unused", **kwargs: object) -> FeedConfig:
    fields: dict = {"name": "news", "url": url, "section": "News in brief"}
    fields.update(kwargs)
    return FeedConfig(**fields)


def item(n: int, **fields: object) -> dict:
    data: dict = {"title": f"Item {n}", "link": f"https://news.example.org/{n}",
                  "guid": f"news-{n}", "published": IN_WINDOW - timedelta(hours=n),
                  "description": f"<p>Summary {n}.</p>"}
    data.update(fields)
    return data


def pull_project(project, *feeds: str, **draft_fields: object):  # noqa: ANN201 - PullResult
    """Configure FEEDS (feed_table text), write a 2026-11 draft and pull it at NOW."""
    project.write_config("".join(feeds))
    project.draft(**draft_fields)
    with project.connect() as conn:
        return pull(project.config(), project.load_draft(), conn, now=NOW, timeout=0.5)


# --- parsing -----------------------------------------------------------------------------------


def test_rss_items_become_feed_items_with_plain_titles_and_utc_dates(rss):
    body = rss([item(1, title="Fees <b>halved</b> &amp; more",
                     published="Tue, 13 Oct 2026 10:15:00 +0200")])
    (parsed,), warning = parse_feed(NEWS, body)
    assert warning == ""
    assert parsed == FeedItem(
        id="news-1", title="Fees halved & more", link="https://news.example.org/1",
        summary="<p>Summary 1.</p>", published=datetime(2026, 10, 13, 8, 15, tzinfo=UTC),
        feed="news", section="News in brief", kind="news")


def test_atom_entries_become_feed_items(atom):
    body = atom([{"title": "12 November 2026 — Webinar", "id": "tag:events.example.org,2026:1",
                  "link": "https://events.example.org/1", "published": "2026-10-05T10:30:00+02:00",
                  "summary": "<p>Join us.</p>"}])
    events = feed(name="events", section="Upcoming events", kind="events")
    (parsed,), _ = parse_feed(events, body)
    assert parsed.id == "tag:events.example.org,2026:1"
    assert parsed.title == "12 November 2026 — Webinar"
    assert parsed.link == "https://events.example.org/1"
    assert parsed.summary == "<p>Join us.</p>"
    assert parsed.published == datetime(2026, 10, 5, 8, 30, tzinfo=UTC)
    assert (parsed.feed, parsed.section, parsed.kind) == ("events", "Upcoming events", "events")


def test_item_without_guid_is_identified_by_its_normalised_link(rss):
    body = rss([item(1, guid=None, link="HTTPS://News.Example.org/a?utm_source=rss&id=7#top")])
    (parsed,), _ = parse_feed(NEWS, body)
    assert parsed.id == "https://news.example.org/a?id=7"
    assert parsed.link == "HTTPS://News.Example.org/a?utm_source=rss&id=7#top"


def test_normalise_link_drops_fragment_and_tracking_parameters_only():
    assert normalise_link("https://EXAMPLE.org?utm_medium=x&b=2&a=1#frag") == \
        "https://example.org/?b=2&a=1"


def test_long_summary_is_shortened_to_plain_text_at_a_word_boundary(rss):
    words = " ".join(f"word{i}" for i in range(200))
    (parsed,), _ = parse_feed(NEWS, rss([item(1, description=f"<p><b>{words}</b></p>")]))
    assert parsed.summary.startswith("<p>word0 word1 ")
    assert parsed.summary.endswith("…</p>")
    assert "<b>" not in parsed.summary
    assert len(parsed.summary) < 340
    assert parsed.summary[3:-5].split(" ")[-1].startswith("word")  # no word cut in half


def test_hostile_html_in_titles_and_summaries_is_removed(rss):
    body = rss([item(
        1,
        title='<script>alert("t")</script>Trade <img src=x onerror=alert(1)>secrets',
        description=(
            '<p onclick="steal()">Read <a href="javascript:alert(1)">this</a> and '
            '<a href="https://safe.example.org/x">that</a>.</p>'
            '<iframe src="https://evil.example/"></iframe><script>steal()</script>'
            '<img src="https://img.example.org/a.png" alt="A" onerror="steal()">'),
    )])
    (parsed,), _ = parse_feed(NEWS, body)
    assert parsed.title == "Trade secrets"
    for banned in ("script", "onclick", "onerror", "javascript:", "iframe", "evil", "steal",
                   "alert"):
        assert banned not in parsed.summary
    assert '<a href="https://safe.example.org/x">that</a>' in parsed.summary
    (image,) = re.findall(r"<img[^>]*>", parsed.summary)
    assert ' alt="A"' in image and ' src="https://img.example.org/a.png"' in image


def test_relative_links_and_images_in_summaries_are_dropped(rss):
    body = rss([item(1, description='<p>See <a href="/about">about us</a> '
                                    '<img src="/logo.png" alt="Logo"> and '
                                    '<a href="https://news.example.org/ok">this</a>.</p>')])
    (parsed,), _ = parse_feed(NEWS, body)
    assert parsed.summary == ('<p>See <a>about us</a>  and '
                              '<a href="https://news.example.org/ok">this</a>.</p>')


@pytest.mark.parametrize("link", ["ftp://news.example.org/1", "javascript:alert(1)",
                                  "/relative/path", "mailto:x@example.org", ""])
def test_items_without_an_absolute_http_link_are_dropped(rss, link):
    body = rss([item(1, link=link), item(2)])
    items, _ = parse_feed(NEWS, body)
    assert [i.id for i in items] == ["news-2"]


def test_title_with_control_characters_is_one_clean_line(rss):
    (parsed,), _ = parse_feed(NEWS, rss([item(1, title="Bad\u202eTitle\tnow")]))
    assert parsed.title == "Bad Title now"


def test_malformed_xml_with_nothing_to_recover_is_a_feed_error_naming_the_feed():
    with pytest.raises(FeedError) as info:
        parse_feed(NEWS, b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</ti')
    assert str(info.value) == ("feed news: malformed feed: unclosed token at line 1, "
                               "column 74")


def test_a_document_that_is_not_a_feed_is_refused():
    with pytest.raises(FeedError) as info:
        parse_feed(NEWS, b"<!DOCTYPE html><html><body><p>Hello</p></body></html>")
    assert str(info.value).startswith("feed news: ")


BILLION_LAUGHS = (
    '<!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>')


def test_feed_declaring_entities_is_refused_before_parsing():
    # The rest of the document is not even XML: refusing it as "malformed" would mean the
    # parser had already been given it.
    body = f'<?xml version="1.0"?>{BILLION_LAUGHS}<rss><channel><title>&lol2;'.encode()
    with pytest.raises(FeedError) as info:
        parse_feed(NEWS, body)
    assert str(info.value) == "feed news: declares XML entities; refused"


def test_entity_declarations_behind_a_long_comment_are_refused(rss):
    body = rss([item(1, title="&lol2;")], prolog="<!-- <a> " + "x" * 10_000 + " -->"
               + BILLION_LAUGHS).replace(b"&amp;lol2;", b"&lol2;")
    with pytest.raises(FeedError, match="declares XML entities; refused"):
        parse_feed(NEWS, body)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_entity_declarations_in_a_utf16_feed_are_refused(encoding):
    doc = (f'<?xml version="1.0" encoding="UTF-16"?>{BILLION_LAUGHS}<rss version="2.0">'
           "<channel><title>T</title><item><title>&lol2;</title>"
           "<link>https://news.example.org/1</link></item></channel></rss>")
    with pytest.raises(FeedError, match="declares XML entities; refused"):
        parse_feed(NEWS, doc.encode(encoding))


# --- fetching over HTTP ------------------------------------------------------------------------


def test_fetch_sends_a_user_agent_and_returns_the_validators(feed_server, rss):
    url = feed_server.route("/f.xml", rss([item(1)]), etag='"v1"',
                            last_modified="Tue, 10 Nov 2026 08:00:00 GMT")
    fetched = fetch(feed(url), timeout=0.5)
    assert fetched.body == rss([item(1)])
    assert fetched.etag == '"v1"'
    assert fetched.last_modified == "Tue, 10 Nov 2026 08:00:00 GMT"
    assert not fetched.not_modified
    (request,) = feed_server.requests_for("/f.xml")
    assert request.headers["user-agent"].startswith("newsletter/")
    assert "if-none-match" not in request.headers


def test_fetch_with_a_cached_copy_sends_conditional_headers_and_reuses_it_on_304(feed_server):
    url = feed_server.route("/f.xml", b"<rss>new</rss>", etag='"v2"',
                            last_modified="Tue, 10 Nov 2026 08:00:00 GMT")
    cached = CachedFeed('"v2"', "Tue, 10 Nov 2026 08:00:00 GMT", b"<rss>cached</rss>")
    fetched = fetch(feed(url), cached, timeout=0.5)
    assert fetched.not_modified
    assert fetched.body == b"<rss>cached</rss>"
    (request,) = feed_server.requests_for("/f.xml")
    assert request.headers["if-none-match"] == '"v2"'
    assert request.headers["if-modified-since"] == "Tue, 10 Nov 2026 08:00:00 GMT"


def test_a_changed_feed_is_fetched_whole_despite_the_cache(feed_server):
    url = feed_server.route("/f.xml", b"<rss>new</rss>", etag='"v3"')
    fetched = fetch(feed(url), CachedFeed('"v2"', None, b"<rss>old</rss>"), timeout=0.5)
    assert not fetched.not_modified
    assert (fetched.body, fetched.etag) == (b"<rss>new</rss>", '"v3"')


def test_second_pull_sends_validators_from_the_store_and_reuses_the_cached_body(project, rss):
    url = project.server.route("/news.xml", rss([item(1), item(2)]), etag='"abc"',
                               last_modified="Tue, 10 Nov 2026 08:00:00 GMT")
    first = pull_project(project, project.feed_table("news", url, "News in brief"))
    with project.connect() as conn:
        cached = store_feeds.get_feed_cache(conn, url)
    assert cached == CachedFeed('"abc"', "Tue, 10 Nov 2026 08:00:00 GMT", rss([item(1), item(2)]))
    second = pull_project(project, project.feed_table("news", url, "News in brief"))
    first_request, second_request = project.server.requests_for("/news.xml")
    assert "if-none-match" not in first_request.headers
    assert second_request.headers["if-none-match"] == '"abc"'
    assert second_request.headers["if-modified-since"] == "Tue, 10 Nov 2026 08:00:00 GMT"
    assert [i.id for i in second.snapshot.items] == [i.id for i in first.snapshot.items] \
        == ["news-1", "news-2"]
    assert second.warnings == ()


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_is_a_warning_naming_the_feed_and_the_other_feed_comes_through(
        project, rss, status):
    broken = project.server.route("/broken.xml", b"oops", status=status)
    good = project.server.route("/good.xml", rss([item(1)]))
    result = pull_project(project, project.feed_table("broken", broken, "Broken"),
                          project.feed_table("good", good, "Good"))
    assert result.warnings == (f"feed broken: HTTP {status} from {broken}",)
    assert [i.id for i in result.snapshot.items] == ["news-1"]


def test_slow_server_hits_the_timeout_and_the_other_feed_comes_through(project, rss):
    slow = project.server.route("/slow.xml", rss([item(9)]), delay=5)
    good = project.server.route("/good.xml", rss([item(1)]))
    result = pull_project(project, project.feed_table("slow", slow, "Slow"),
                          project.feed_table("good", good, "Good"))
    assert result.warnings == ("feed slow: timed out after 0.5 s",)
    assert [i.id for i in result.snapshot.items] == ["news-1"]


def test_oversized_body_with_content_length_is_refused(feed_server):
    url = feed_server.route("/big.xml", b"x" * 5000)
    with pytest.raises(FeedError) as info:
        fetch(feed(url), timeout=0.5, max_bytes=1000)
    assert str(info.value) == "feed news: too large (5000 bytes, limit 1000)"


def test_oversized_body_without_content_length_is_cut_off(feed_server):
    url = feed_server.route("/big.xml", b"x" * 200_000, content_length=False)
    with pytest.raises(FeedError) as info:
        fetch(feed(url), timeout=0.5, max_bytes=1000)
    assert str(info.value) == "feed news: too large (over 1000 bytes)"


def test_a_redirect_is_followed(feed_server, rss):
    target = feed_server.route("/new.xml", rss([item(1)]))
    old = feed_server.route("/old.xml", status=301, headers={"Location": target})
    assert fetch(feed(old), timeout=0.5).body == rss([item(1)])


def test_too_many_redirects_are_refused(feed_server):
    loop = feed_server.route("/loop.xml", status=302, headers={"Location": "/loop.xml"})
    with pytest.raises(FeedError) as info:
        fetch(feed(loop), timeout=0.5)
    assert str(info.value) == "feed news: more than 5 redirects"
    assert len(feed_server.requests_for("/loop.xml")) == 6


def test_local_feed_file_is_read_from_disk(tmp_path, rss):
    path = tmp_path / "news.xml"
    path.write_bytes(rss([item(1)]))
    assert fetch(feed(str(path))).body == rss([item(1)])


def test_missing_local_feed_file_names_the_feed(tmp_path):
    with pytest.raises(FeedError) as info:
        fetch(feed(str(tmp_path / "absent.xml")))
    assert str(info.value).startswith("feed news: cannot read ")


# --- choosing the items of an issue ------------------------------------------------------------

START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)


def parsed_items(rss, *items: dict, config: FeedConfig = NEWS) -> list[FeedItem]:
    return parse_feed(config, rss(list(items)))[0]


def choose(items: list[FeedItem], config: FeedConfig = NEWS, *, seen: set[str] | None = None,
           exclude: tuple[str, ...] = ()) -> list[str]:
    chosen = choose_items(items, config, start=START, end=END,
                          seen=set() if seen is None else seen, exclude=exclude)
    return [i.id for i in chosen]


def test_items_outside_the_window_are_dropped(rss):
    items = parsed_items(
        rss, item(1, published=START - timedelta(seconds=1)), item(2, published=START),
        item(3, published=END - timedelta(seconds=1)), item(4, published=END))
    assert choose(items) == ["news-3", "news-2"]  # newest first; the window is [start, end)


def test_duplicates_within_a_feed_are_removed(rss):
    items = parsed_items(rss, item(1), item(1, title="Same guid again"),
                         item(2, guid="other", link="https://news.example.org/1?utm_source=x"))
    assert choose(items) == ["news-1"]


def test_items_seen_in_an_earlier_issue_are_skipped(rss):
    items = parsed_items(rss, item(1), item(2), item(3))
    seen = {"news-1", "https://news.example.org/3"}  # by id, and by normalised link
    assert choose(items, seen=seen) == ["news-2"]


def test_exclude_drops_items_by_id_or_by_link(rss):
    items = parsed_items(rss, item(1), item(2), item(3))
    assert choose(items, exclude=("news-1", "https://NEWS.example.org/2#comments")) == ["news-3"]


def test_keyword_filter_keeps_items_mentioning_a_keyword_in_title_or_summary(rss):
    items = parsed_items(rss, item(1, title="New trademark rules"),
                         item(2, description="<p>All about <b>patents</b></p>"),
                         item(3, title="Office party"))
    assert choose(items, feed(keywords=("trademark", "patent"))) == ["news-1", "news-2"]


def test_max_items_keeps_the_newest(rss):
    items = parsed_items(rss, *(item(n) for n in range(1, 8)))
    assert choose(items, feed(max_items=3)) == ["news-1", "news-2", "news-3"]


def test_events_are_listed_soonest_first(rss):
    events = feed(name="events", kind="events", max_items=2)
    items = parsed_items(rss, item(1), item(2), item(3), config=events)
    assert choose(items, events) == ["news-3", "news-2"]


def test_undated_items_are_kept(rss):
    items = parsed_items(rss, item(1), item(2, published=None))
    assert items[1].published is None
    assert choose(items) == ["news-2", "news-1"]  # undated sort as the newest


def test_duplicates_across_feeds_appear_once(project, rss):
    shared = item(1, guid="shared-guid")
    first = project.server.route("/a.xml", rss([shared, item(2)]))
    second = project.server.route("/b.xml", rss([shared, item(3)]))
    result = pull_project(project, project.feed_table("a", first, "A"),
                          project.feed_table("b", second, "B"))
    assert [(i.feed, i.id) for i in result.snapshot.items] == [
        ("a", "shared-guid"), ("a", "news-2"), ("b", "news-3")]


def test_exclude_in_front_matter_drops_items_when_pulling(project, rss):
    url = project.server.route("/news.xml", rss([item(1), item(2), item(3)]))
    result = pull_project(project, project.feed_table("news", url, "News"),
                          exclude=["news-1", "https://news.example.org/3"])
    assert [i.id for i in result.snapshot.items] == ["news-2"]


def test_keyword_filter_from_config_applies_when_pulling(project, rss):
    url = project.server.route("/news.xml", rss([item(1, title="Patent fees"), item(2)]))
    result = pull_project(project, project.feed_table("news", url, "News", keywords=["PATENT"]))
    assert [i.title for i in result.snapshot.items] == ["Patent fees"]


def test_max_items_from_config_applies_when_pulling(project, rss):
    url = project.server.route("/news.xml", rss([item(n) for n in range(1, 6)]))
    result = pull_project(project, project.feed_table("news", url, "News", max_items=2))
    assert [i.id for i in result.snapshot.items] == ["news-1", "news-2"]


# --- feeds as the world writes them, served over HTTP ------------------------------------------


def lying_declaration(body: bytes, encoding: str) -> bytes:
    """BODY re-encoded in ENCODING, its XML declaration still claiming ISO-8859-1."""
    return body.decode("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"') \
        .encode(encoding)


@pytest.mark.parametrize(("encoding", "title", "summary"), [
    ("gb2312", "知识产权新闻", "中小企业的商标"),
    ("windows-1251", "Патентные новости", "Товарные знаки для МСП"),
])
def test_the_charset_in_the_http_content_type_wins_over_the_xml_declaration(
        project, rss, encoding, title, summary):
    body = lying_declaration(rss([item(1, title=title, description=f"<p>{summary}</p>")]),
                             encoding)
    url = project.server.route("/news.xml", body, etag='"c1"', headers={
        "Content-Type": f"application/rss+xml; charset={encoding}"})
    first = pull_project(project, project.feed_table("news", url, "News"))
    assert [(i.title, i.summary) for i in first.snapshot.items] == [(title, f"<p>{summary}</p>")]
    # The second pull gets a 304 and uses the stored copy, which has no Content-Type header.
    second = pull_project(project, project.feed_table("news", url, "News"))
    assert project.server.requests_for("/news.xml")[1].headers["if-none-match"] == '"c1"'
    assert [i.title for i in second.snapshot.items] == [title]
    assert first.warnings == second.warnings == ()


def test_an_undefined_entity_or_a_bare_ampersand_keeps_every_entry_with_one_warning(project, rss):
    body = rss([item(1, title="Don&rsquo;t miss the fee cut"), item(2, title="R&D tax relief"),
                item(3)])
    body = body.replace(b"&amp;rsquo;", b"&rsquo;").replace(b"R&amp;D", b"R&D")
    url = project.server.route("/news.xml", body)
    result = pull_project(project, project.feed_table("news", url, "News"))
    assert [i.title for i in result.snapshot.items] == [
        "Don\u2019t miss the fee cut", "R&D tax relief", "Item 3"]
    (warning,) = result.warnings
    assert warning.startswith("feed news: 1 bare '&' read as '&amp;'; undefined entity at line ")
    assert warning.endswith("; kept the 3 entries that could be read")


def test_entity_declarations_are_still_refused_when_served(project, rss):
    body = rss([item(1, title="&lol2;")], prolog=BILLION_LAUGHS).replace(b"&amp;lol2;", b"&lol2;")
    url = project.server.route("/news.xml", body)
    result = pull_project(project, project.feed_table("news", url, "News"))
    assert result.warnings == ("feed news: declares XML entities; refused",)
    assert result.snapshot.items == ()


def test_relative_links_resolve_against_the_address_the_feed_came_from(project, rss):
    body = rss([item(1, link="/news/2026/fees", description=(
                    '<p><a href="more.html">More</a> <img src="img/chart.png" alt="Chart"></p>')),
                item(2, link="2026/clinic"), item(3, link="javascript:alert(1)")])
    final = project.server.route("/feeds/v2/news.xml", body)
    old = project.server.route("/news-old.xml", status=301,
                               headers={"Location": "/feeds/v2/news.xml"})
    result = pull_project(project, project.feed_table("news", old, "News"))
    origin = final.removesuffix("/feeds/v2/news.xml")
    first, second = result.snapshot.items
    assert first.link == f"{origin}/news/2026/fees"
    assert f'<a href="{origin}/feeds/v2/more.html">More</a>' in first.summary
    assert f'src="{origin}/feeds/v2/img/chart.png"' in first.summary
    assert second.link == f"{origin}/feeds/v2/2026/clinic"
    assert result.warnings == ("feed news: 1 item(s) dropped: no absolute http(s) link "
                               "(first: 'javascript:alert(1)')",)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>',
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>',
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>tag:x,2026:e</id>'
    b"<updated>2026-11-01T00:00:00Z</updated></feed>",
])
def test_a_well_formed_feed_without_entries_gives_no_items_and_no_warning(project, rss, body):
    empty = project.server.route("/empty.xml", body, headers={"Content-Type": "application/xml"})
    good = project.server.route("/good.xml", rss([item(1)]))
    result = pull_project(project, project.feed_table("empty", empty, "Empty"),
                          project.feed_table("good", good, "Good"))
    assert result.warnings == ()
    assert [i.id for i in result.snapshot.items] == ["news-1"]


def test_a_truncated_feed_keeps_the_entries_before_the_cut_with_a_warning(project, rss):
    whole = rss([item(1), item(2)])
    url = project.server.route("/news.xml", whole[: whole.rindex(b"<item>") + 20])
    result = pull_project(project, project.feed_table("news", url, "News"))
    assert [i.id for i in result.snapshot.items] == ["news-1"]
    (warning,) = result.warnings
    assert warning.startswith("feed news: ") and "kept the 2 entries that could be read" in warning


def test_a_feed_redirecting_to_a_loopback_address_adds_nothing_to_the_snapshot(project, rss):
    """Only localhost is allowed: the redirect to 127.0.0.1 (not allowed) is refused."""
    port = project.server.httpd.server_address[1]
    internal = project.server.route("/internal.xml", rss([item(1, title="Internal secret")]))
    project.server.route("/news.xml", status=302, headers={"Location": internal})
    public = project.server.route("/other.xml", rss([item(2)]))
    project.write_config(project.feed_table("news", f"http://localhost:{port}/news.xml", "News")
                         + project.feed_table("other", public, "Other"))
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text.replace(
        'allow_hosts = ["127.0.0.1"]', f'allow_hosts = ["localhost:{port}", "127.0.0.1:1"]'),
        encoding="utf-8")
    project.server.routes["/other.xml"].headers = {}
    project.draft()
    with project.connect() as conn:
        result = pull(project.config(), project.load_draft(), conn, now=NOW, timeout=0.5)
    assert result.warnings == (f"feed news: not fetched: {internal}: a loopback address; allow "
                               "it in newsletter.toml [network] allow_hosts",
                               f"feed other: not fetched: {public}: a loopback address; allow "
                               "it in newsletter.toml [network] allow_hosts")
    assert result.snapshot.items == ()
    assert project.server.requests_for("/internal.xml") == []


def test_character_reference_to_no_unicode_character_reads_as_replacement_character():
    # feedparser's lenient parser raised ValueError on &#x110000; (XML 1.0 §2.2 Char)
    body = (b'<rss version="2.0"><channel><item><title>a &#1114112; b &#55296; c &#233;</title>'
            b"<link>http://example.com/a</link></item></channel></rss>")
    items, _ = parse_feed(feed(), body)
    assert items[0].title == "a \ufffd b \ufffd c \u00e9"


def test_an_exception_inside_the_feed_parser_is_a_one_line_error_naming_the_feed():
    # feedparser 6.0.14 raises TypeError on a stray </height> in <image> (its illformed suite)
    body = (b'<rss version="2.0"><channel><image><url>http://example.org/u</url></height>'
            b"</image><item><title>x</title><link>http://example.com/a</link></item>"
            b"</channel></rss>")
    with pytest.raises(FeedError) as info:
        parse_feed(feed(), body)
    assert str(info.value).startswith("feed news: unreadable feed (TypeError in the feed parser")
    assert "\n" not in str(info.value)


def test_an_uppercase_hex_character_reference_reads_as_its_character():
    body = (b'<rss version="2.0"><channel><item><title>&#X41;&#x42; &#X2019;</title>'
            b"<link>http://example.com/a</link></item></channel></rss>")
    items, _ = parse_feed(feed(), body)
    assert items[0].title == "AB \u2019"
