"""The welcome mail: on confirmation, the latest issue's frozen edition in the reader's
language, personalised, through the web app's mail queue (real HTTP, a real aiosmtpd relay),
exactly once."""

from __future__ import annotations

import re
import shutil
import sqlite3
import time

import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import HTTP, PREFIX, local, subscribe_and_confirm
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import verification_secrets, verify_token
from newsletter.i18n import edition_note, gettext_for

NOW = "2026-11-22T10:00"
LIST_ID = "ip-for-business.ipbusiness.example.org"
NIA = "nia@example.org"


@pytest.fixture
def sent(delivery_project: DeliveryProject, smtp_server: ScriptedServer,
         smtp_script: Script) -> DeliveryProject:
    """The November issue sent in English and French to the list."""
    for name in ("2026-11.fr.md", "2026-11.fr.items.yaml"):
        shutil.copy(SAMPLE_ISSUES / name, delivery_project.root / "issues" / name)
    assert delivery_project.cli("send", "2026-11", "--now", NOW) == 0
    with sqlite3.connect(delivery_project.db) as conn:
        assert {r[0] for r in conn.execute("SELECT language FROM editions")} == {"en", "fr"}
    smtp_script.messages.clear()
    return delivery_project


def welcomes(script: Script, email: str) -> list:  # noqa: ANN201 - email messages
    return [m for m in script.parsed(email) if "/confirm/" not in
            m.get_body(("plain",)).get_content()]


def wait_for(check, seconds: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_confirming_sends_one_welcome_with_the_latest_issue_in_the_readers_language(
        sent: DeliveryProject, smtp_script: Script) -> None:
    with sqlite3.connect(sent.db) as conn:
        subject_fr = conn.execute("SELECT subject FROM editions WHERE issue = '2026-11' AND "
                                  "language = 'fr'").fetchone()[0]
    # The web app's own worker thread delivers the queue, as `newsletter serve` runs it.
    with running_app(sent.config, worker=True) as origin:
        HTTP.post(f"{origin}{PREFIX}/subscribe?lang=fr",
                   data={"email": NIA, "name": "Nia Reader", "language": "fr"})
        wait_for(lambda: smtp_script.parsed(NIA))
        text = smtp_script.parsed(NIA)[0].get_body(("plain",)).get_content()
        link = local(origin, re.search(r"https://\S+/confirm/\S+", text)[0])
        assert HTTP.post(link).status_code == 200
        wait_for(lambda: welcomes(smtp_script, NIA))
        assert HTTP.post(link).status_code == 200  # confirming twice
        time.sleep(1.5)  # several worker rounds (0.2 s each): a second welcome would be here
    assert deliver_queued(sent.config).claimed == 0
    [welcome] = welcomes(smtp_script, NIA)
    _ = gettext_for("fr")
    assert welcome["Subject"] == _("Welcome to %(newsletter)s: %(subject)s") % {
        "newsletter": "IP for Business", "subject": subject_fr}
    assert welcome["Content-Language"] == "fr"
    body = welcome.get_body(("plain",)).get_content()
    note = _("Welcome to %(newsletter)s! Here is our latest issue; the next ones will come to "
             "this address.") % {"newsletter": "IP for Business"}
    assert " ".join(note.split()[:6]) in " ".join(body.split())  # the text part wraps lines
    assert "Nia Reader" in body and "__NL_" not in welcome.as_string()
    unsubscribe = re.search(r"<(https://[^>]+)>", welcome["List-Unsubscribe"])[1]
    token = unsubscribe.rsplit("/", 1)[1]
    assert verify_token(verification_secrets(), LIST_ID, token) == NIA  # their own link
    assert welcome["To"].addresses[0].addr_spec == NIA
    with sqlite3.connect(sent.db) as conn:  # and the second POST is no second consent
        assert conn.execute("SELECT count(*) FROM consent_events WHERE email = ?",
                            (NIA,)).fetchone() == (1,)


def test_the_welcome_is_the_english_edition_for_a_reader_of_a_language_without_one(
        sent: DeliveryProject, smtp_script: Script) -> None:
    with running_app(sent.config) as origin:
        assert subscribe_and_confirm(origin, sent.config, smtp_script, NIA,
                                     language="ru").status_code == 200
    deliver_queued(sent.config)
    [welcome] = welcomes(smtp_script, NIA)
    assert welcome["Content-Language"] == "en"
    body = " ".join(welcome.get_body(("plain",)).get_content().split())
    note = edition_note("ru", "en")  # the reader is told why, in Russian
    assert note and " ".join(note.split()[:4]) in body


def test_no_welcome_before_the_first_issue(delivery_project: DeliveryProject,
                                           smtp_server: ScriptedServer,
                                           smtp_script: Script) -> None:
    with running_app(delivery_project.config) as origin:
        subscribe_and_confirm(origin, delivery_project.config, smtp_script, NIA)
    deliver_queued(delivery_project.config)
    assert welcomes(smtp_script, NIA) == []
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT state, last_reply FROM mail_queue WHERE kind = 'welcome'"
                            ).fetchall() == [("suppressed", "not sent: no issue has gone out yet")]


def test_a_reader_already_on_the_list_who_confirms_again_gets_no_welcome(
        sent: DeliveryProject, smtp_script: Script) -> None:
    reader = sent.addresses[0]
    with running_app(sent.config) as origin:
        assert subscribe_and_confirm(origin, sent.config, smtp_script, reader).status_code == 200
    deliver_queued(sent.config)
    assert len(smtp_script.parsed(reader)) == 1  # the confirmation only
    with sqlite3.connect(sent.db) as conn:
        assert conn.execute("SELECT count(*) FROM mail_queue WHERE kind = 'welcome'"
                            ).fetchone() == (0,)


def test_no_welcome_from_an_issue_with_segments(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    """Its audience and sections were decided per reader at its freeze: a new reader outside
    its audience must not get it by way of the welcome."""
    draft = delivery_project.root / "issues" / "2026-11.md"
    draft.write_text(draft.read_text(encoding="utf-8").replace(
        "exclude: []\n", "exclude: []\naudience:\n  tags: [geneva]\n", 1), encoding="utf-8")
    csv = delivery_project.root / "subscribers" / "sample.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("Reader 0,en,", "Reader 0,en,geneva",
                                                           1), encoding="utf-8")
    assert delivery_project.cli("send", "2026-11", "--now", NOW) == 0
    assert smtp_script.copies() == {delivery_project.addresses[0]: 1}  # the audience: one
    with running_app(delivery_project.config) as origin:
        subscribe_and_confirm(origin, delivery_project.config, smtp_script, NIA)
    deliver_queued(delivery_project.config)
    assert welcomes(smtp_script, NIA) == []
    with sqlite3.connect(delivery_project.db) as conn:
        [(state, reply)] = conn.execute("SELECT state, last_reply FROM mail_queue WHERE kind = "
                                        "'welcome'").fetchall()
    assert state == "suppressed" and "has segments" in reply
