"""Counted links: /r/ID in the mail, 302 through `serve`, scanners filtered, no reader in it."""

from __future__ import annotations

import re
import sqlite3
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from conftest_delivery import DeliveryProject
from test_editions import multilingual  # noqa: F401 - the fixture
from web_server import running_app

from newsletter.compose.links import CANARY_HTML, count_links
from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.model import Edition
from newsletter.store import catalog
from newsletter.store.connect import open_store
from newsletter.web.scan_filter import ScannerFilter

NOW = "2026-11-22T10:00"
BASE = "https://ipbusiness.example.org/newsletter"
WINDOW = 1  # [reach] scanner_seconds in these tests: short, so the tests wait little
R_URL = re.compile(re.escape(BASE) + r"/r/([A-Za-z0-9_-]+)")


def counting(project: DeliveryProject, *, proxies: bool = True) -> None:
    """Turn counting on; trust 127.0.0.1 as a proxy so X-Forwarded-For names test clients."""
    text = project.config.read_text(encoding="utf-8")
    text += f"\n[reach]\ncount_clicks = true\nscanner_seconds = {WINDOW}\n"
    if proxies:
        text += '\n[web]\ntrusted_proxies = ["127.0.0.1"]\n'
    project.config.write_text(text, encoding="utf-8")


def sent_messages(project: DeliveryProject) -> list:
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted((project.root / "outbox" / "new").iterdir())]


def parts(message) -> tuple[str, str]:  # noqa: ANN001
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


def token_of(message) -> str:  # noqa: ANN001
    return re.search(r"/unsubscribe/([^>\s]+)>", message["List-Unsubscribe"]).group(1)


def db_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table the engine's catalog lists (on PostgreSQL: the test's
    database)."""
    with open_store(db) as handle:
        return {t: sorted(map(tuple, handle.all(f'SELECT * FROM "{t}"')), key=repr)
                for t in catalog.tables(handle)}


def link_rows(db: Path) -> dict[str, tuple[str, str, int, int]]:
    with sqlite3.connect(db) as conn:
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
            "SELECT id, url, kind, clicks, filtered FROM reach_links")}


def wait_for_totals(db: Path, expected_hits: int, timeout: float = 10) -> dict:
    """The link rows once clicks + filtered add up to the hits made (the filter's window and
    the committer's round have passed)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = link_rows(db)
        if sum(c + f for _, _, c, f in rows.values()) >= expected_hits or \
                time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.fixture
def sent(delivery_project: DeliveryProject) -> DeliveryProject:
    counting(delivery_project)
    assert delivery_project.cli("send", "--now", NOW) == 0
    return delivery_project


# --- the links in the mail ------------------------------------------------------------------


def test_every_reader_gets_the_same_counted_links_and_none_names_them(sent) -> None:
    messages = sent_messages(sent)
    assert len(messages) == 6
    found = []
    for message in messages:
        html, text = parts(message)
        ids_html, ids_text = set(R_URL.findall(html)), set(R_URL.findall(text))
        assert ids_html and ids_text <= ids_html
        found.append(ids_html)
        address, token = message["To"].addresses[0].addr_spec, token_of(message)
        for url in R_URL.finditer(html + text):
            assert address.split("@")[0] not in url.group() and token not in url.group()
    assert all(ids == found[0] for ids in found)
    links = link_rows(sent.db)
    assert set(found[0]) == set(links)  # every id in the mail is a row, and only those


def test_text_part_carries_the_same_redirect_as_the_html_part_and_no_canary(sent) -> None:
    html, text = parts(sent_messages(sent)[0])
    links = link_rows(sent.db)
    canary = next(i for i, (_, kind, _, _) in links.items() if kind == "canary")
    assert f"/r/{canary}" in html and f"/r/{canary}" not in text
    for link_id, (url, kind, _, _) in links.items():
        if kind == "link":
            assert f"/r/{link_id}" in text, url  # the text part lists every outside link
            assert url not in text and url not in html  # none left unrewritten


def test_own_pages_and_per_reader_links_are_not_rewritten(sent) -> None:
    message = sent_messages(sent)[0]
    html, text = parts(message)
    token = token_of(message)
    assert f"{BASE}/unsubscribe/{token}" in text and f"{BASE}/preferences/{token}" in text
    assert f'href="{BASE}/issues/2026-11"' in html  # view online goes straight to the page


def test_links_are_left_alone_when_counting_is_off(delivery_project) -> None:
    assert delivery_project.cli("send", "--now", NOW) == 0
    html, text = parts(sent_messages(delivery_project)[0])
    assert "/r/" not in html and "/r/" not in text and "data-nl-canary" not in html


def test_a_bad_reach_setting_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "newsletter.toml"
    path.write_text('[newsletter]\nname = "N"\nfrom = "N <n@example.org>"\n'
                    '[reach]\ncount_clicks = "yes"\nscanner_seconds = 0\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "'reach.count_clicks' must be true or false" in str(caught.value)
    assert "'reach.scanner_seconds' must be a whole number" in str(caught.value)


# --- /r/ID through a real server ------------------------------------------------------------


def outside_links(db: Path) -> list[tuple[str, str]]:
    return [(i, url) for i, (url, kind, _, _) in link_rows(db).items() if kind == "link"]


def test_get_redirects_with_302_and_counts_once_the_window_passes(sent) -> None:
    (first, url), (second, _) = outside_links(sent.db)[:2]
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        response = client.get(f"/newsletter/r/{first}", headers={
            "X-Forwarded-For": "198.51.100.9"})
        assert response.status_code == 302
        assert response.headers["Location"] == url
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        client.get(f"/newsletter/r/{first}", headers={"X-Forwarded-For": "198.51.100.10"})
        client.get(f"/newsletter/r/{second}", headers={"X-Forwarded-For": "198.51.100.9"})
        rows = wait_for_totals(sent.db, 3)
    assert rows[first][2:] == (2, 0) and rows[second][2:] == (1, 0)


def test_head_is_answered_and_never_counted(sent) -> None:
    (first, url), (second, _) = outside_links(sent.db)[:2]
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        response = client.head(f"/newsletter/r/{first}")
        assert response.status_code == 302 and response.headers["Location"] == url
        client.get(f"/newsletter/r/{second}")  # one counted hit, to know when totals are in
        rows = wait_for_totals(sent.db, 1)
    assert rows[first][2:] == (0, 0) and rows[second][2:] == (1, 0)


def test_canary_voids_the_clients_hits_before_and_after_it_not_others(sent) -> None:
    links = outside_links(sent.db)
    canary = next(i for i, (_, kind, _, _) in link_rows(sent.db).items() if kind == "canary")
    scanner, person = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        client.get(f"/newsletter/r/{links[0][0]}", headers=scanner)  # before the canary
        assert client.get(f"/newsletter/r/{canary}", headers=scanner).status_code == 302
        client.get(f"/newsletter/r/{links[1][0]}", headers=scanner)  # after it
        client.get(f"/newsletter/r/{links[0][0]}", headers=person)
        rows = wait_for_totals(sent.db, 4)
    assert rows[links[0][0]][2:] == (1, 1)  # the person's click; the scanner's filtered
    assert rows[links[1][0]][2:] == (0, 1)
    assert rows[canary][2:] == (0, 1)


def test_ipv6_clients_are_one_client_per_64(sent) -> None:
    (first, _), = outside_links(sent.db)[:1]
    canary = next(i for i, (_, kind, _, _) in link_rows(sent.db).items() if kind == "canary")
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        client.get(f"/newsletter/r/{canary}", headers={"X-Forwarded-For": "2001:db8:1:2::5"})
        client.get(f"/newsletter/r/{first}", headers={"X-Forwarded-For": "2001:db8:1:2::99"})
        rows = wait_for_totals(sent.db, 2)
    assert rows[first][2:] == (0, 1)


def test_unknown_or_malformed_id_is_a_404_page_not_a_redirect(sent) -> None:
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        for path in ("/newsletter/r/AAAAAAAAAAAA", "/newsletter/r/x", "/newsletter/r/",
                     "/newsletter/r/https:%2F%2Fevil.example", "/newsletter/r/%0d%0aX:1"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "Location" not in response.headers, path
        assert "This link is not valid" in client.get("/newsletter/r/AAAAAAAAAAAA").text


def test_clicks_write_nothing_but_totals_and_no_reader_or_client_anywhere(sent) -> None:
    messages = sent_messages(sent)
    tokens = [token_of(m) for m in messages]
    addresses = [m["To"].addresses[0].addr_spec for m in messages]
    before = db_rows(sent.db)
    links = outside_links(sent.db)
    with running_app(sent.config) as origin, httpx.Client(base_url=origin) as client:
        for n, (link_id, _) in enumerate(links):
            client.get(f"/newsletter/r/{link_id}", headers={
                "X-Forwarded-For": f"192.0.2.{n + 1}", "User-Agent": addresses[0]})
        wait_for_totals(sent.db, len(links))
    after = db_rows(sent.db)
    changed = {t for t in after if after[t] != before.get(t)}
    assert changed == {"reach_links"}  # a click changes totals, nothing else
    dump = repr(after)
    for token in tokens:
        assert token not in dump
    reach = repr(after["reach_links"])
    for address in addresses:
        assert address not in reach and address.split("@")[0] not in reach
    everything = b"".join(p.read_bytes() for p in sent.db.parent.glob(sent.db.name + "*"))
    for n in range(len(links)):
        assert f"192.0.2.{n + 1}".encode() not in everything


# --- the scanner filter on its own ----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_filter_holds_a_hit_for_the_window_then_counts_it() -> None:
    clock = Clock()
    scanners = ScannerFilter(5, clock)
    scanners.hit("198.51.100.1", "a")
    clock.now = 4.9
    assert not scanners.settle()
    clock.now = 5.1
    assert scanners.settle().clicks == {"a": 1}


def test_filter_drops_hits_within_the_window_around_a_canary_only() -> None:
    clock = Clock()
    scanners = ScannerFilter(5, clock)
    scanners.hit("c", "early")  # t=0: more than 5 s before the canary: a person's
    clock.now = 6
    scanners.hit("c", "before")  # t=6: 4 s before it
    clock.now = 10
    scanners.hit("c", "canary", canary=True)
    clock.now = 14
    scanners.hit("c", "after")  # 4 s after
    clock.now = 16
    scanners.hit("c", "late")  # 6 s after: a person's again
    clock.now = 30
    settled = scanners.settle()
    assert settled.clicks == {"early": 1, "late": 1}
    assert settled.filtered == {"before": 1, "canary": 1, "after": 1}


def test_filter_at_shutdown_counts_what_still_waits() -> None:
    scanners = ScannerFilter(5, Clock())
    scanners.hit("c", "a")
    assert scanners.settle(everything=True).clicks == {"a": 1} and scanners.pending() == 0


def test_a_client_repeating_one_link_within_the_window_counts_once() -> None:
    clock = Clock()
    scanners = ScannerFilter(5, clock)
    for step in range(200):  # a reload loop from one address
        clock.now = step * 0.01
        scanners.hit("198.51.100.7", "a")
    scanners.hit("198.51.100.7", "b")  # another link of the same reader counts
    scanners.hit("198.51.100.8", "a")  # and the same link from another client
    clock.now = 10
    scanners.hit("198.51.100.7", "a")  # past the window: a new click
    clock.now = 30
    settled = scanners.settle()
    assert settled.clicks == {"a": 3, "b": 1} and settled.filtered == {"a": 199}


def test_the_filter_keeps_at_most_max_clients_marks_and_repeats(monkeypatch) -> None:
    import newsletter.web.scan_filter as scan_filter

    monkeypatch.setattr(scan_filter, "MAX_CLIENTS", 50)
    scanners = ScannerFilter(600, Clock())
    for n in range(500):  # canaries and clicks from 500 different /64s, within one window
        scanners.hit(f"2001:db8:{n:x}::/64", "canary", canary=True)
        scanners.hit(f"2001:db8:1:{n:x}::/64", "a")
    assert len(scanners._marked) <= 50 and len(scanners._recent) <= 50
    assert scanners.pending() == 500  # the people's hits still wait for their window


# --- the canary in the mail: hidden from people and assistive technology ---------------------


def test_canary_is_invisible_unfocusable_and_axe_clean_in_chromium(chromium, tmp_path) -> None:
    from test_layout import run_axe, sample_edition

    from newsletter.compose.browser import open_browser

    edition: Edition = sample_edition("en")
    counted = count_links(edition, BASE, lambda urls: {u: f"id{n:08d}" for n, u in
                                                      enumerate([*urls, "canary"])}, "canary")
    page_file = tmp_path / "counted.html"
    page_file.write_text(counted.edition.html, encoding="utf-8")
    assert CANARY_HTML.split(" ")[0] in counted.edition.html
    with open_browser() as browser:
        assert run_axe(browser, page_file) == []
        page = browser.new_page()
        page.goto(page_file.as_uri())
        canary = page.locator("[data-nl-canary]")
        assert canary.count() == 1 and not canary.is_visible()
        for _ in range(60):  # Tab through the whole message: focus never lands on it
            page.keyboard.press("Tab")
            assert not page.evaluate("document.activeElement.hasAttribute('data-nl-canary')")
        page.close()


def test_serve_writes_the_clicks_still_waiting_when_it_is_stopped(sent) -> None:
    """SIGTERM before the window has passed: the hit is a person's (no canary came), and
    `newsletter serve` writes it on its way out instead of losing it."""
    from test_web_abuse import serve_process

    text = sent.config.read_text(encoding="utf-8").replace(
        f"scanner_seconds = {WINDOW}", "scanner_seconds = 300")
    sent.config.write_text(text, encoding="utf-8")
    (first, url), = outside_links(sent.db)[:1]
    with serve_process(sent) as (proc, port):
        response = httpx.get(f"http://127.0.0.1:{port}/newsletter/r/{first}")
        assert response.status_code == 302 and response.headers["Location"] == url
        time.sleep(0.5)
        assert link_rows(sent.db)[first][2:] == (0, 0)  # still waiting out its window
    assert proc.returncode is not None
    assert link_rows(sent.db)[first][2:] == (1, 0)


def test_a_late_edition_gets_counted_links_of_its_own_language(
        multilingual, monkeypatch) -> None:  # noqa: F811
    from test_editions import translate
    from test_late_edition import LATER, send

    counting(multilingual, proxies=False)
    send(multilingual, monkeypatch, NOW)
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    late = send(multilingual, monkeypatch, LATER)
    with sqlite3.connect(multilingual.db) as conn:
        spanish = {r[0] for r in conn.execute(
            "SELECT id FROM reach_links WHERE issue = '2026-11' AND language = 'es'")}
    assert late.messages and spanish
    for rcpt, _ in late.messages:
        for message in late.parsed(rcpt):
            html, text = parts(message)
            assert set(R_URL.findall(html)) <= spanish and set(R_URL.findall(html)) & spanish
            assert set(R_URL.findall(text)) <= spanish


# --- rewriting on its own -------------------------------------------------------------------


def test_rewriting_keeps_own_pages_slots_and_mailto_and_matches_urls_whole() -> None:
    from newsletter.compose.personalise import UNSUBSCRIBE_URL

    html = ('<html><body><p><a href="https://x.example/a?b=1&amp;c=2">one</a> '
            '<a href="https://x.example/a">two</a> <a href="mailto:team@example.org">m</a> '
            f'<a href="{BASE}/issues/2026-11">web</a> <a href="{UNSUBSCRIBE_URL}">u</a> '
            '<a href="#top">top</a> <a href="https://x.example/a">two again</a></p></body></html>')
    text = ("one <https://x.example/a?b=1&c=2>\ntwo <https://x.example/a>\n"
            "https://x.example/a/longer stays\n")
    edition = Edition("2026-11", "en", "s", "p", html, text, "reader")
    made: list[list[str]] = []

    def ids_for(urls: list[str]) -> dict[str, str]:
        made.append(urls)
        return {u: f"id{n:08d}" for n, u in enumerate([*urls, "canary"])}

    counted = count_links(edition, BASE, ids_for, "canary")
    assert made == [["https://x.example/a?b=1&c=2", "https://x.example/a"]]
    out = counted.edition
    assert out.html.count(f'href="{BASE}/r/id00000001"') == 2
    assert f'href="{BASE}/r/id00000000"' in out.html
    for kept in ("mailto:team@example.org", f"{BASE}/issues/2026-11", UNSUBSCRIBE_URL, "#top"):
        assert f'href="{kept}"' in out.html
    assert out.text == (f"one <{BASE}/r/id00000000>\ntwo <{BASE}/r/id00000001>\n"
                        "https://x.example/a/longer stays\n")
    assert out.html.index("data-nl-canary") < out.html.index("one</a>")


def test_every_segment_variant_gets_the_editions_counted_links(
        delivery_project, smtp_server, smtp_script) -> None:
    from test_segments import write_draft, write_readers

    body = ("Welcome.\n\n## For everyone\n\nRead [the guide](https://x.example/guide).\n\n"
            "## Geneva {only=geneva}\n\nSee [the workshop](https://x.example/geneva).\n")
    write_draft(delivery_project, body)
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("cy@example.com", "en", "")])
    counting(delivery_project, proxies=False)
    assert delivery_project.cli("send", "--now", NOW) == 0
    links = {url: i for i, (url, kind, _, _) in link_rows(delivery_project.db).items()
             if kind == "link"}
    html = {a: smtp_script.parsed(a)[0].get_body(("html",)).get_content()
            for a in ("ana@example.com", "cy@example.com")}
    assert f"/r/{links['https://x.example/guide']}" in html["ana@example.com"]
    assert f"/r/{links['https://x.example/guide']}" in html["cy@example.com"]  # the same id
    assert f"/r/{links['https://x.example/geneva']}" in html["ana@example.com"]
    assert links["https://x.example/geneva"] not in html["cy@example.com"]
    assert "https://x.example/" not in html["ana@example.com"]  # nothing left unrewritten
    assert all(html[a].count("data-nl-canary") == 1 for a in html)
