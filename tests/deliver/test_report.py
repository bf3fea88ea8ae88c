"""`newsletter report ISSUE`: an issue sent through a real SMTP server, its bounces read from a
Maildir, an unsubscribe and clicks through the real web app; the report's figures against the
ledger's and the return path's, in the table and in the HTML page as Chromium shows it."""

from __future__ import annotations

import mailbox
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer
from test_reach import counting, link_rows, outside_links, wait_for_totals
from web_server import running_app

from newsletter.store import ledger
from newsletter.store.connect import open_store

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bounces"
PREFIX = "/newsletter"


def bounce_for(fixture: str, original: str, address: str) -> bytes:
    data = (FIXTURES / fixture).read_bytes()
    return re.sub(re.escape(original).encode(), address.encode(), data, flags=re.IGNORECASE)


def token_of(data: bytes) -> str:
    message = message_from_bytes(data, policy=policy.default)
    return re.search(r"/unsubscribe/([^>\s]+)>", message["List-Unsubscribe"]).group(1)


@pytest.fixture
def reported(delivery_project: DeliveryProject, smtp_server: ScriptedServer,
             smtp_script: Script, tmp_path: Path, capsys) -> dict:
    """Six readers: one refused at RCPT (failed), one hard bounce, one soft, one complaint,
    one unsubscribe; 12 people click the first link, 3 the second, a scanner both."""
    project = delivery_project
    a = project.addresses
    counting(project)
    # Due an hour ago by the real clock: the return path's events are stamped with it too,
    # and they must fall within the month after the send.
    draft = project.root / "issues" / "2026-11.md"
    soon = (datetime.now(UTC) - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Zurich"))
    draft.write_text(re.sub(r"(?m)^send_at: .*$", f"send_at: {soon:%Y-%m-%dT%H:%M}",
                            draft.read_text(encoding="utf-8")), encoding="utf-8")
    smtp_script.rcpt[a[0]] = ["550 5.1.1 no such user"]
    assert project.cli("send") == 0
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(bounce_for("postfix_user_unknown.eml", "ann.lee@example.com", a[1]))
    box.add(bounce_for("postfix_mailbox_full_failed.eml", "erin.k@example.org", a[2]))
    box.add(bounce_for("arf_abuse.eml", "frank.o@example.net", a[3]))
    assert project.cli("bounces", str(tmp_path / "Maildir")) == 0
    links = outside_links(project.db)
    canary = next(i for i, (_, kind, _, _) in link_rows(project.db).items() if kind == "canary")
    token = token_of(dict(smtp_script.messages)[a[4]])
    with running_app(project.config) as origin, httpx.Client(base_url=origin) as client:
        assert client.post(f"{PREFIX}/unsubscribe/{token}",
                           data={"List-Unsubscribe": "One-Click"}).status_code == 200
        for n in range(12):
            client.get(f"{PREFIX}/r/{links[0][0]}", headers={"X-Forwarded-For": f"192.0.2.{n}"})
        for n in range(3):
            client.get(f"{PREFIX}/r/{links[1][0]}", headers={"X-Forwarded-For": f"192.0.2.{n}"})
        scanner = {"X-Forwarded-For": "203.0.113.50"}
        for link_id in (canary, links[0][0], links[1][0]):
            client.get(f"{PREFIX}/r/{link_id}", headers=scanner)
        wait_for_totals(project.db, 18)
    capsys.readouterr()
    assert project.cli("report", "2026-11") == 0
    return {"project": project, "out": capsys.readouterr().out, "links": links,
            "messages": list(smtp_script.messages)}


def table(out: str) -> dict[str, dict[str, str]]:
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("edition "))
    columns = lines[head].split()
    rows = {}
    for line in lines[head + 1:]:
        cells = line.split()
        if len(cells) != len(columns):
            break
        rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def ledger_figures(db: Path) -> dict[str, int]:
    conn = open_store(db)
    try:
        states = ledger.counts(conn, "2026-11")["2026-11"]
        first = conn.execute("SELECT min(frozen_at) FROM editions").fetchone()[0]
        kinds = dict(conn.execute("SELECT kind, count(DISTINCT email) FROM bounce_events "
                                  "WHERE at >= ? AND reason != 'delayed' GROUP BY kind",
                                  (first,)).fetchall())
        unsubscribed = conn.execute("SELECT count(*) FROM subscribers WHERE status = "
                                    "'unsubscribed'").fetchone()[0]
    finally:
        conn.close()
    return {"delivered": states["sent"], "failed": states["failed"], "hard": kinds.get("hard", 0),
            "soft": kinds.get("soft", 0), "ours": kinds.get("ours", 0),
            "complained": kinds.get("complaint", 0), "unsubscribed": unsubscribed}


def test_the_table_has_the_ledgers_and_the_return_paths_numbers(reported) -> None:
    figures = ledger_figures(reported["project"].db)
    assert figures == {"delivered": 5, "failed": 1, "hard": 1, "soft": 1, "ours": 0,
                       "complained": 1, "unsubscribed": 1}  # what the fixture made happen
    row = table(reported["out"])["en"]
    assert {k: int(row[k]) for k in figures} == figures


def test_clicks_per_link_hide_counts_under_ten_and_leave_scanners_out(reported) -> None:
    (first, first_url), (_, second_url) = reported["links"][:2]
    out = reported["out"]
    assert re.search(rf"^  en\s+12\s+{re.escape(first_url)}$", out, re.MULTILINE)
    assert re.search(rf"^  en\s+<10\s+{re.escape(second_url)}$", out, re.MULTILINE)
    assert table(out)["en"]["clicks"] == "15"
    assert "link scanners opened the message <10 time(s)" in out
    assert link_rows(reported["project"].db)[first][2:] == (12, 1)


def test_the_html_page_shows_the_same_figures_in_chromium(reported, chromium) -> None:
    from newsletter.compose.browser import open_browser

    project = reported["project"]
    page_file = project.root / "build" / "2026-11" / "report.html"
    assert f"written to {page_file}" in reported["out"]
    expected = table(reported["out"])
    (_, first_url), (_, second_url) = reported["links"][:2]
    with open_browser() as browser:
        page = browser.new_page(java_script_enabled=False)
        page.goto(page_file.as_uri())
        header = page.locator("#figures thead th").all_inner_texts()
        cells = page.locator("#figures tbody tr").first.locator("th, td").all_inner_texts()
        links = {row.split("\t")[0]: row.split("\t")[1] for row in
                 page.locator("table.links tbody tr").all_inner_texts()}
        charts = page.locator("svg[role=img]").count()
        bars = page.locator("svg rect").count()
        page.close()
    assert dict(zip(header, cells, strict=True)) == expected["en"]
    assert links[first_url] == "12" and links[second_url] == "<10"
    assert charts == 2 and bars >= 7 + len(links)


def test_an_event_before_the_issue_went_out_is_not_the_issues(reported, capsys) -> None:
    project = reported["project"]
    with sqlite3.connect(project.db) as conn:
        conn.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES "
                     "(?, 'hard', 'earlier', '2020-01-01T00:00:00+00:00')",
                     (project.addresses[5],))
    assert project.cli("report", "2026-11") == 0
    assert table(capsys.readouterr().out)["en"]["hard"] == "1"


def test_an_issue_never_sent_is_one_line_and_exit_2(delivery_project, capsys) -> None:
    assert delivery_project.cli("report", "2026-10") == 2
    err = capsys.readouterr().err
    assert "2026-10 has not been sent" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_issue_is_refused(delivery_project, capsys) -> None:
    assert delivery_project.cli("report", "../etc") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_forgotten_reader_still_counts_as_delivered(reported, capsys) -> None:
    project = reported["project"]
    before = table(reported["out"])["en"]["delivered"]
    assert project.cli("subscribers", "forget", project.addresses[5]) == 0
    capsys.readouterr()
    assert project.cli("report", "2026-11") == 0
    assert table(capsys.readouterr().out)["en"]["delivered"] == before


def test_an_unsubscribe_after_the_month_is_not_the_issues(reported, capsys) -> None:
    project = reported["project"]
    with sqlite3.connect(project.db) as conn:
        first = datetime.fromisoformat(conn.execute(
            "SELECT min(frozen_at) FROM editions").fetchone()[0])
    reader = project.addresses[5]
    late = first + timedelta(days=40)
    token = token_of(dict(reported["messages"])[reader])
    with running_app(project.config, clock=lambda: late) as origin:
        assert httpx.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                          data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with sqlite3.connect(project.db) as conn:
        assert conn.execute("SELECT status FROM subscribers WHERE email = ?",
                            (reader,)).fetchone()[0] == "unsubscribed"
    capsys.readouterr()
    assert project.cli("report", "2026-11") == 0
    assert table(capsys.readouterr().out)["en"]["unsubscribed"] == "1"
