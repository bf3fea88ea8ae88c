"""Consent history: how each subscriber joined (web form with its language and text version,
CSV file and line, operator command), when, and why they left; `subscribers show`."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import HTTP, PREFIX, bounce_maildir, subscribe_and_confirm
from smtp_server import Script, ScriptedServer
from web_server import running_app

from newsletter.audience.tokens import make_token
from newsletter.i18n import gettext_for

LIST_ID = "ip-for-business.ipbusiness.example.org"


def show(project: DeliveryProject, capsys: pytest.CaptureFixture, address: str) -> str:
    capsys.readouterr()
    assert project.cli("subscribers", "show", address) == 0
    return capsys.readouterr().out


def history_lines(out: str) -> list[str]:
    block = out.split("consent history:\n", 1)[1].split("\ndeliveries:", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_a_csv_import_records_the_file_and_line_once(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    csv = delivery_project.root / "subscribers" / "sample.csv"
    assert delivery_project.cli("subscribers", "import", str(csv)) == 0
    assert delivery_project.cli("subscribers", "import", str(csv)) == 0  # known: no new event
    out = show(delivery_project, capsys, "reader002@example.com")
    [line] = history_lines(out)
    # the header is line 1, reader000 line 2: reader002 is on line 4
    # named as the project names it, not by the absolute path it was given
    assert re.search(r"subscribed +CSV import +subscribers/sample\.csv:4$", line), line
    assert out.startswith("reader002@example.com: active; name 'Reader 2', language en")


def test_operator_commands_are_in_the_history_with_who_ran_them(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    import getpass

    assert delivery_project.cli("subscribers", "add", "ana@example.org", "--name", "Ana") == 0
    assert delivery_project.cli("subscribers", "remove", "ana@example.org") == 0
    joined, left = history_lines(show(delivery_project, capsys, "ana@example.org"))
    assert re.search(rf"subscribed +operator \({re.escape(getpass.getuser())}\) +subscribers add$",
                     joined), joined
    assert re.search(r"unsubscribed +operator \(.*\) +subscribers remove: removed by an editor$",
                     left), left


def test_the_web_form_records_its_language_and_text_version(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys: pytest.CaptureFixture) -> None:
    with running_app(delivery_project.config) as origin:
        done = subscribe_and_confirm(origin, delivery_project.config, smtp_script,
                                     "nia@example.org", language="es", form_language="fr")
        assert done.status_code == 200
        # The editor rewords the form: a later subscriber agreed to another text.
        template = delivery_project.root / "templates" / "web" / "subscribe.html.j2"
        template.write_text(template.read_text(encoding="utf-8").replace(
            "{% block main %}", "{% block main %}<p>We write once a month.</p>", 1),
            encoding="utf-8")
    with running_app(delivery_project.config) as origin:
        subscribe_and_confirm(origin, delivery_project.config, smtp_script, "oto@example.org",
                              form_language="fr")
    [first] = history_lines(show(delivery_project, capsys, "nia@example.org"))
    [second] = history_lines(show(delivery_project, capsys, "oto@example.org"))
    pattern = (r"subscribed +web form +form in fr, text version ([0-9a-f]{12}); asked "
               r"\d{4}-\d\d-\d\d \d\d:\d\d \w+, confirmed by the link mailed to the address$")
    v1, v2 = re.search(pattern, first)[1], re.search(pattern, second)[1]
    assert v1 != v2
    with sqlite3.connect(delivery_project.db) as conn:
        texts = dict(conn.execute("SELECT version, text FROM consent_texts"))
    assert gettext_for("fr")("Subscribe") in texts[v1]  # the words the French form showed
    assert "We write once a month." in texts[v2] and "We write once a month." not in texts[v1]
    capsys.readouterr()
    assert delivery_project.cli("subscribers", "show", "nia@example.org", "--json") == 0
    [joined] = json.loads(capsys.readouterr().out)["consent_history"]
    assert joined["form_text"] == texts[v1]  # the reader's own export says what they agreed to


def test_an_unsubscribe_is_in_the_history_and_its_reason_only_in_the_totals(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    assert delivery_project.cli("subscribers", "import",
                                str(delivery_project.root / "subscribers" / "sample.csv")) == 0
    email = "reader001@example.com"
    token = make_token("test-secret", LIST_ID, email)
    with running_app(delivery_project.config) as origin:
        page = HTTP.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                          data={"List-Unsubscribe": "One-Click"})
        assert page.status_code == 200
        form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
        assert form is not None and "reason" in form[2]
        assert email not in form[2] and token not in form[0]  # the answer names no one
        ticket = re.search(r'name="ticket" value="([^"]+)"', form[2])[1]
        answer = HTTP.post(origin + form[1], data={"reason": "too-often", "ticket": ticket})
        replay = HTTP.post(origin + form[1], data={"reason": "too-often", "ticket": ticket})
        forged = HTTP.post(origin + form[1], data={"reason": "other", "ticket": ticket[:-2]
                                                    + "xx"})
        unknown = HTTP.post(origin + form[1], data={"reason": "spam", "ticket": ticket})
        hostile = [HTTP.post(origin + form[1], data={"reason": "other", "ticket": bad})
                   for bad in ("\u00e9.1.x", "x" * 5000, "a.99999999999999999999.b", "", "..")]
        assert {r.status_code for r in hostile} == {200}
    assert {r.status_code for r in (answer, replay, forged, unknown)} == {200}
    joined, left = history_lines(show(delivery_project, capsys, email))
    assert "CSV import" in joined
    assert re.search(r"unsubscribed +unsubscribe link +one-click unsubscribe$", left), left
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT * FROM unsubscribe_reasons").fetchall() == [("too-often", 1)]
        columns = [c[1] for c in conn.execute("PRAGMA table_info(unsubscribe_reasons)")]
    assert columns == ["reason", "count"]  # totals: no reader, no time
    capsys.readouterr()
    assert delivery_project.cli("subscribers", "reasons") == 0
    out = capsys.readouterr().out
    assert re.search(r"^too-often +1$", out, re.M) and re.search(r"^other +0$", out, re.M)


def test_the_reason_question_is_in_the_readers_language(
        delivery_project: DeliveryProject) -> None:
    assert delivery_project.cli("subscribers", "add", "ru@example.org", "--language", "ru") == 0
    token = make_token("test-secret", LIST_ID, "ru@example.org")
    with running_app(delivery_project.config) as origin:
        page = HTTP.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                          data={"List-Unsubscribe": "One-Click"})
    _ = gettext_for("ru")
    assert _("Would you tell us why? (optional)") in page.text
    assert _("I get too many emails") in page.text
    assert _("I get too many emails") != "I get too many emails"


def test_a_bounce_is_in_the_history_with_its_reason(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    assert delivery_project.cli("subscribers", "add", "gone@example.com") == 0
    maildir = bounce_maildir(delivery_project.root, "gone@example.com")
    assert delivery_project.cli("bounces", str(maildir)) == 0
    out = show(delivery_project, capsys, "gone@example.com")
    joined, bounced = history_lines(out)
    assert re.search(r"bounced +bounce report +hard bounce \d{4}-\d\d-\d\d: 5\.1\.1 ", bounced)
    assert "bounces: hard" in out


def test_show_an_address_not_on_the_list_is_one_line_and_exit_2(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    assert delivery_project.cli("subscribers", "show", "nobody@example.org") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "nobody@example.org is not on the list" in err
    assert "Traceback" not in err
