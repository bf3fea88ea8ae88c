"""The reader's data behind a mailed link: the unsubscribe token (in every forwarded issue)
no longer downloads or erases; the link mailed to the reader's own address does, for 24
hours; at most one such mail an hour per address. Real aiosmtpd relay, real HTTP, SQLite."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import HTTP, PREFIX, ask_for_data_link, local, manage_links
from smtp_server import Script, ScriptedServer
from web_server import running_app

from newsletter.audience.tokens import make_confirm_token, make_manage_token, make_token
from newsletter.config import load_config
from newsletter.i18n import gettext_for
from newsletter.web.mailqueue import MailQueue

LIST_ID = "ip-for-business.ipbusiness.example.org"
READER = "lea@example.org"


@pytest.fixture
def reader(delivery_project: DeliveryProject, smtp_server: ScriptedServer) -> DeliveryProject:
    assert delivery_project.cli("subscribers", "add", READER, "--name", "Léa",
                                "--language", "fr") == 0
    return delivery_project


def subscribers(project: DeliveryProject) -> list[str]:
    with sqlite3.connect(project.db) as conn:
        return [r[0] for r in conn.execute("SELECT email FROM subscribers")]


def test_the_unsubscribe_token_alone_neither_downloads_nor_erases(
        reader: DeliveryProject, smtp_script: Script) -> None:
    token = make_token("test-secret", LIST_ID, READER)
    with running_app(reader.config) as origin:
        data = HTTP.post(f"{origin}{PREFIX}/preferences/{token}/data")
        explained = HTTP.get(f"{origin}{PREFIX}/forget/{token}")
        erase = HTTP.post(f"{origin}{PREFIX}/forget/{token}", data={"confirm": "yes"})
        manage = HTTP.get(f"{origin}{PREFIX}/manage/{token}")
        manage_data = HTTP.post(f"{origin}{PREFIX}/manage/{token}/data")
        manage_erase = HTTP.post(f"{origin}{PREFIX}/manage/{token}/delete",
                                 data={"confirm": "yes"})
    assert not data.headers["Content-Type"].startswith("application/json")
    assert READER not in data.text and "Content-Disposition" not in data.headers
    assert erase.status_code == 200 and "Your data is deleted" not in erase.text
    assert explained.status_code == 200 and "/data-link" in explained.text
    assert manage.status_code == manage_data.status_code == manage_erase.status_code == 400
    assert subscribers(reader) == [READER]


def test_the_mailed_link_in_the_readers_language_downloads_and_erases(
        reader: DeliveryProject, smtp_script: Script) -> None:
    with running_app(reader.config) as origin:
        asked = ask_for_data_link(origin, reader.config, make_token("test-secret", LIST_ID,
                                                                    READER))
        assert asked.status_code == 200
        [mail] = smtp_script.parsed(READER)
        fr = gettext_for("fr")
        assert mail["Subject"] == fr(
            "Your link to download or delete your data at %(newsletter)s") % {
            "newsletter": load_config(reader.config).name}
        assert mail.get_body(("html",)) is not None
        [link] = manage_links([mail], READER)
        page = HTTP.get(local(origin, link))
        assert page.status_code == 200 and fr("Download my data") in page.text
        data = HTTP.post(local(origin, link) + "/data")
        assert data.headers["Content-Type"].startswith("application/json")
        assert data.json()["subscriber"]["email"] == READER
        done = HTTP.post(local(origin, link) + "/delete", data={"confirm": "yes"})
        assert done.status_code == 200
    assert subscribers(reader) == []


def test_an_expired_or_foreign_manage_link_is_refused(
        reader: DeliveryProject, smtp_script: Script) -> None:
    now = datetime.now(UTC)
    expired = make_manage_token("test-secret", LIST_ID, READER, now - timedelta(hours=24,
                                                                                 minutes=1))
    young = make_manage_token("test-secret", LIST_ID, READER, now - timedelta(hours=23))
    foreign = make_manage_token("other-secret", LIST_ID, READER, now)
    confirm = make_confirm_token("test-secret", LIST_ID, READER, now)  # another purpose
    with running_app(reader.config) as origin:
        for token in (expired, foreign, confirm):
            assert HTTP.get(f"{origin}{PREFIX}/manage/{token}").status_code == 400
            assert HTTP.post(f"{origin}{PREFIX}/manage/{token}/data").status_code == 400
            assert HTTP.post(f"{origin}{PREFIX}/manage/{token}/delete",
                             data={"confirm": "yes"}).status_code == 400
        assert subscribers(reader) == [READER]
        assert HTTP.get(f"{origin}{PREFIX}/manage/{young}").status_code == 200


def test_one_data_link_mail_an_hour_per_address_and_the_same_page_either_way(
        reader: DeliveryProject, smtp_script: Script) -> None:
    clock = [datetime.now(UTC)]
    token = make_token("test-secret", LIST_ID, READER)
    stranger = make_token("test-secret", LIST_ID, "nobody@example.org")  # not on the list
    queue = MailQueue(load_config(reader.config), clock=lambda: clock[0])

    def ask(which: str) -> str:
        reply = HTTP.post(f"{origin}{PREFIX}/preferences/{which}/data-link")
        assert reply.status_code == 200
        while queue.run_once(clock[0]).claimed:
            pass
        return reply.text

    with running_app(reader.config, clock=lambda: clock[0]) as origin:
        pages = [ask(token), ask(token), ask(token), ask(stranger)]
        assert len(smtp_script.parsed(READER)) == 1
        assert smtp_script.parsed("nobody@example.org") == []
        clock[0] += timedelta(minutes=61)
        ask(token)
    assert len(smtp_script.parsed(READER)) == 2
    assert pages[0] == pages[1] == pages[2]  # sent, or held back by the hour: the same page
    # an address not on the list gets the same words (in the browser's language, as it has
    # no language of its own)
    assert "If this address is on our list, we have sent it a link" in pages[3]
