"""A reader's data: the JSON download, and erasure from the web page and the command line.
After a forget the address is in no table, not in the database file's bytes, not in the
program's own files, and no CSV import adds it again; the ledger keeps counts."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable

import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import (
    HTTP,
    PREFIX,
    ask_for_data_link,
    bounce_maildir,
    files_naming,
    local,
    manage_links,
    names,
    outbox_messages,
    rows_naming,
)
from smtp_server import Script, ScriptedServer
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import make_token

LIST_ID = "ip-for-business.ipbusiness.example.org"
NOW = "2026-11-22T10:00"
GONE = "reader001@example.com"
LOOKALIKE = "areader001@example.com"  # contains GONE: must survive GONE's erasure


def token_for(email: str) -> str:
    return make_token("test-secret", LIST_ID, email)


@pytest.fixture
def busy(delivery_project: DeliveryProject) -> DeliveryProject:
    """The list after a month: imported, the issue sent to the Maildir outbox, a bounce
    and a subscribe request for the reader to forget, and a look-alike address."""
    return fill(delivery_project)


@pytest.fixture
def linked(delivery_project: DeliveryProject) -> tuple[DeliveryProject, str]:
    """busy, where the reader asked for their data link (and got it) before the bounce: a
    bounced address gets no more mail, not even this one."""
    links: list[str] = []

    def ask() -> None:
        with running_app(delivery_project.config) as origin:
            asked = ask_for_data_link(origin, delivery_project.config, token_for(GONE))
        assert asked.status_code == 200 and "we have sent it a link" in asked.text
        links.extend(manage_links(outbox_messages(delivery_project.root / "outbox"), GONE))

    fill(delivery_project, before_bounce=ask)
    [link] = links
    return delivery_project, link


def fill(delivery_project: DeliveryProject, *,
         before_bounce: Callable[[], None] = lambda: None) -> DeliveryProject:
    csv = delivery_project.root / "subscribers" / "sample.csv"
    csv.write_text(csv.read_text(encoding="utf-8") + f"{LOOKALIKE},Look Alike,en,\n",
                   encoding="utf-8")
    assert delivery_project.cli("send", "2026-11", "--now", NOW) == 0
    before_bounce()
    # the return-path mailbox is the operator's, outside the project folder
    assert delivery_project.cli("bounces", str(bounce_maildir(delivery_project.root.parent,
                                                              GONE))) == 0
    with running_app(delivery_project.config) as origin:
        HTTP.post(f"{origin}{PREFIX}/subscribe", data={"email": GONE.upper(), "name": "R1"})
    deliver_queued(delivery_project.config)  # the confirmation mail, into the outbox too
    assert rows_naming(delivery_project.db, GONE)  # the address is all over the database
    assert files_naming(delivery_project.root / "outbox", GONE)
    return delivery_project


def assert_erased(project: DeliveryProject) -> None:
    assert rows_naming(project.db, GONE) == []
    # forget itself leaves no copy in free pages or the WAL (secure_delete, checkpoint) ...
    for path in project.root.glob("newsletter.db*"):
        assert not names(path.read_bytes(), GONE), path
    # ... and none comes back when the file is rebuilt
    with sqlite3.connect(project.db) as conn:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in project.root.glob("newsletter.db*"):
        assert not names(path.read_bytes(), GONE), path
    csv = project.root / "subscribers" / "sample.csv"  # the editors' own file, not ours
    assert files_naming(project.root, GONE, skip=(csv,)) == []
    assert rows_naming(project.db, LOOKALIKE)  # the neighbour is untouched


def test_cli_forget_erases_every_trace_and_keeps_the_ledger_counts(
        busy: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert busy.cli("status", "2026-11") == 0
    before = capsys.readouterr().out.splitlines()[0]
    assert busy.cli("subscribers", "forget", GONE) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^{GONE}: forgotten: 1 subscriber row\(s\), \d+ other row\(s\) and "
                     r"[1-9]\d* outbox message\(s\) deleted; 1 delivery row\(s\) and 1 bounce "
                     r"event\(s\) kept as counts only", out, re.M), out
    assert re.search(r"^subscribers/sample\.csv:3: still lists this address", out, re.M)
    assert_erased(busy)
    assert busy.cli("status", "2026-11") == 0
    assert capsys.readouterr().out.splitlines()[0] == before  # "2026-11: 7 subscriber(s): sent 7"


def test_a_reimport_does_not_resubscribe_a_forgotten_reader_and_says_where(
        busy: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    assert busy.cli("subscribers", "forget", GONE) == 0
    other = busy.root / "subscribers" / "other.csv"
    other.write_text("email,name\nsomeone@example.org,Some One\n"
                     "Reader001+News@Example.com,Reader One\n", encoding="utf-8")
    capsys.readouterr()
    assert busy.cli("subscribers", "import", str(busy.root / "subscribers" / "sample.csv"),
                    str(other)) == 0
    captured = capsys.readouterr()
    assert re.search(r"sample\.csv:3: skipped: this reader asked to be forgotten "
                     r"\(\d{4}-\d\d-\d\d\); only they can subscribe again", captured.err)
    assert re.search(r"other\.csv:3: skipped: this reader asked to be forgotten", captured.err)
    assert GONE not in captured.err  # the line, not the address: output may go to a log
    assert re.search(r"other\.csv: 2 address\(es\), 1 new, .*1 forgotten reader\(s\) skipped",
                     captured.out)
    with sqlite3.connect(busy.db) as conn:
        emails = {r[0].lower() for r in conn.execute("SELECT email FROM subscribers")}
    assert "someone@example.org" in emails
    assert not {e for e in emails if e.startswith("reader001")}
    # The send path imports a changed file quietly: it still skips the reader.
    busy.cli("send", "2026-11", "--now", NOW)
    assert rows_naming(busy.db, GONE) == []
    assert busy.cli("subscribers", "add", GONE) == 2
    assert "asked to be forgotten" in capsys.readouterr().err


def test_the_mailed_data_link_deletes_the_reader_after_a_confirmation(
        linked: tuple[DeliveryProject, str]) -> None:
    busy, link = linked
    with running_app(busy.config) as origin:
        manage = local(origin, link)
        page = HTTP.get(manage)
        action = re.search(r'<form method="post" action="([^"]*/delete)">', page.text)[1]
        asked = HTTP.get(origin + action)  # a link scanner's GET changes nothing
        asked_post = HTTP.post(origin + action)  # the data page's button: asks first
        assert asked.status_code == asked_post.status_code == 200
        assert 'name="confirm" value="yes"' in asked_post.text
        assert rows_naming(busy.db, GONE)
        done = HTTP.post(origin + action, data={"confirm": "yes"})
        assert done.status_code == 200 and "Your data is deleted" in done.text
        assert HTTP.get(manage).status_code == 400
        assert HTTP.get(f"{origin}{PREFIX}/preferences/{token_for(GONE)}").status_code == 400
    assert_erased(busy)


def test_the_mailed_data_link_downloads_the_readers_data_as_json(
        linked: tuple[DeliveryProject, str]) -> None:
    busy, link = linked
    with running_app(busy.config) as origin:
        page = HTTP.get(local(origin, link))
        action = re.search(r'<form method="post" action="([^"]*/data)">', page.text)[1]
        assert HTTP.get(origin + action).status_code == 405  # a download is a POST too
        reply = HTTP.post(origin + action)
        other = HTTP.post(f"{origin}{PREFIX}/manage/garbage/data")
    assert reply.status_code == 200 and other.status_code == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "attachment" in reply.headers["Content-Disposition"]
    data = json.loads(reply.text)
    assert data["subscriber"]["email"] == GONE and data["subscriber"]["status"] == "bounced"
    assert [(e["action"], e["source"]) for e in data["consent_history"]] == [
        ("subscribed", "CSV import"), ("bounced", "bounce report")]
    assert data["consent_history"][0]["detail"].endswith("sample.csv:3")
    assert [(d["issue"], d["state"]) for d in data["deliveries"]] == [("2026-11", "sent")]
    assert [b["kind"] for b in data["bounces"]] == ["hard"]
    assert LOOKALIKE not in reply.text


def test_a_forgotten_reader_may_subscribe_again_on_the_web_form(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    from consent_helpers import subscribe_and_confirm

    assert delivery_project.cli("subscribers", "forget", "back@example.org") == 0
    with running_app(delivery_project.config) as origin:
        done = subscribe_and_confirm(origin, delivery_project.config, smtp_script,
                                     "back@example.org")
    assert done.status_code == 200
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT status FROM subscribers WHERE email = ?",
                            ("back@example.org",)).fetchone() == ("active",)
        assert conn.execute("SELECT count(*) FROM forgotten").fetchone() == (0,)


def test_forget_erases_every_spelling_of_the_inbox(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    for address in ("ana.lima@gmail.com", "AnaLima+news@googlemail.com", "ana@example.org"):
        assert delivery_project.cli("subscribers", "add", address) == 0
    assert delivery_project.cli("subscribers", "forget", "analima@gmail.com") == 0
    assert "forgotten: 2 subscriber row(s)" in capsys.readouterr().out
    assert rows_naming(delivery_project.db, "ana.lima@gmail.com") == []
    assert rows_naming(delivery_project.db, "AnaLima+news@googlemail.com") == []
    assert rows_naming(delivery_project.db, "ana@example.org")  # another inbox
    assert delivery_project.cli("subscribers", "add", "a.n.a.l.i.m.a@gmail.com") == 2


def test_forget_without_the_secret_erases_and_warns_that_the_mark_is_weak(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert delivery_project.cli("subscribers", "add", "dev@example.org") == 0
    monkeypatch.delenv("NEWSLETTER_SECRET")
    assert delivery_project.cli("subscribers", "forget", "dev@example.org") == 0
    assert "NEWSLETTER_SECRET is not set" in capsys.readouterr().err
    assert rows_naming(delivery_project.db, "dev@example.org") == []
