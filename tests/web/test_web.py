"""The web app over real HTTP on 127.0.0.1: one-click unsubscribe, double opt-in, preferences."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from conftest_delivery import DeliveryProject
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import make_token
from newsletter.i18n import gettext_for

NOW = "2026-11-22T10:00"
PREFIX = "/newsletter"  # the path of base_url in the sample newsletter.toml
LIST_ID = "ip-for-business.ipbusiness.example.org"


def status_of(project: DeliveryProject, email: str) -> str:
    with sqlite3.connect(project.db) as conn:
        row = conn.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
    return row[0] if row else ""


def local(origin: str, public_url: str) -> str:
    """The same path on the test server instead of the public host."""
    parts = urlsplit(public_url)
    return origin + parts.path


def token_for(email: str) -> str:
    return make_token("test-secret", LIST_ID, email)


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def confirm_link(script: Script, email: str) -> str:
    """The confirm link in the newest confirmation mail to email (from its text part)."""
    message = script.parsed(email)[-1]
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://\S+/confirm/\S+", text)[0]


def test_one_click_post_unsubscribes_and_is_committed_before_the_200(
        subscribed: DeliveryProject) -> None:
    email = subscribed.addresses[0]
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token_for(email)}",
                           data={"List-Unsubscribe": "One-Click"})
        assert reply.status_code == 200
        assert status_of(subscribed, email) == "unsubscribed"  # read by another connection
        again = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token_for(email)}",
                           data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
    assert "set-cookie" not in {k.lower() for k in reply.headers}


def test_one_click_accepts_a_multipart_body(subscribed: DeliveryProject) -> None:
    email = subscribed.addresses[1]
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token_for(email)}",
                           files={"List-Unsubscribe": (None, "One-Click")})
    assert reply.status_code == 200
    assert status_of(subscribed, email) == "unsubscribed"


def test_get_only_shows_a_confirmation_button_and_changes_nothing(
        subscribed: DeliveryProject) -> None:
    email = subscribed.addresses[0]
    with running_app(subscribed.config) as origin:
        page = httpx.get(f"{origin}{PREFIX}/unsubscribe/{token_for(email)}")
    assert page.status_code == 200
    assert '<form method="post"' in page.text and "Unsubscribe</button>" in page.text
    assert status_of(subscribed, email) == "active"
    assert "<script" not in page.text


@pytest.mark.parametrize("token", [
    "garbage",
    "",  # no token at all is a 404 route, below
    make_token("test-secret", "another.list.example.org", "reader000@example.com"),
    make_token("someone-elses-secret", LIST_ID, "reader000@example.com"),
    make_token("test-secret", LIST_ID, "reader000@example.com")[:-2] + "xx",
    make_token("test-secret", LIST_ID, "reader001@example.com").split(".")[0] + "."
    + make_token("test-secret", LIST_ID, "reader000@example.com").split(".")[1],
])
def test_bad_tokens_change_nothing_and_all_get_the_same_answer(
        subscribed: DeliveryProject, token: str) -> None:
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                           data={"List-Unsubscribe": "One-Click"})
        reference = httpx.post(f"{origin}{PREFIX}/unsubscribe/garbage",
                               data={"List-Unsubscribe": "One-Click"})
    if token:
        assert (reply.status_code, reply.text) == (reference.status_code, reference.text)
        assert reply.status_code == 400
    else:
        assert reply.status_code == 404
    assert {status_of(subscribed, a) for a in subscribed.addresses} == {"active"}


def test_pages_send_security_headers(subscribed: DeliveryProject) -> None:
    with running_app(subscribed.config) as origin:
        page = httpx.get(f"{origin}{PREFIX}/subscribe")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert '<label for="email">' in page.text and 'lang="en"' in page.text


def test_double_opt_in_end_to_end_through_smtp(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    email = "new.reader@example.org"
    with running_app(delivery_project.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/subscribe",
                           data={"email": "New.Reader@Example.org", "name": "Nia Reader",
                                 "language": "fr"})
        assert reply.status_code == 200 and "Check your inbox" in reply.text
        assert status_of(delivery_project, email) == "pending"
        assert smtp_script.messages == []  # nothing is sent inside the request
        assert deliver_queued(delivery_project.config).sent == 1
        link = confirm_link(smtp_script, email)
        page = httpx.get(local(origin, link))
        assert page.status_code == 200  # in French: the language the reader chose
        assert gettext_for("fr")("Confirm my subscription") in page.text
        assert status_of(delivery_project, email) == "pending"  # a GET confirms nothing
        done = httpx.post(local(origin, link))
        assert done.status_code == 200 and gettext_for("fr")("You are subscribed") in done.text
    assert status_of(delivery_project, email) == "active"
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT name, language FROM subscribers WHERE email = ?",
                            (email,)).fetchone() == ("Nia Reader", "fr")


def test_subscribe_form_reveals_nothing_and_mails_each_address_once_in_a_while(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    active = subscribed.addresses[0]
    with running_app(subscribed.config) as origin:
        known = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": active})
        unknown = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "x@example.org"})
        twice = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "x@example.org"})
    assert known.text.replace(active, "A") == unknown.text.replace("x@example.org", "A")
    assert twice.status_code == 200
    deliver_queued(subscribed.config)
    # The subscriber gets one too: a change asked through the form needs the owner's click.
    assert smtp_script.copies() == {active: 1, "x@example.org": 1}


def test_subscribe_form_rejects_a_bad_address_with_a_message(
        subscribed: DeliveryProject) -> None:
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "a@@example.org"})
    assert reply.status_code == 422
    # The reader is told what to fix, in words of the catalog (not the validator's English).
    assert 'role="alert"' in reply.text and "should look like name@example.org" in reply.text


def test_confirm_links_expire(subscribed: DeliveryProject, smtp_server: ScriptedServer,
                              smtp_script: Script) -> None:
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "late@example.org"})
    deliver_queued(subscribed.config)
    link = confirm_link(smtp_script, "late@example.org")
    eight_days_on = lambda: datetime.now(UTC) + timedelta(days=8)  # noqa: E731
    with running_app(subscribed.config, clock=eight_days_on) as origin:
        reply = httpx.post(local(origin, link))
    assert reply.status_code == 400 and "expired" in reply.text
    assert status_of(subscribed, "late@example.org") == "pending"


def test_an_unsubscribe_token_is_not_a_confirm_token(subscribed: DeliveryProject) -> None:
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/confirm/{token_for('late@example.org')}")
    assert reply.status_code == 400
    assert status_of(subscribed, "late@example.org") == ""


def test_key_rotation_accepts_the_previous_secret_until_its_date(
        subscribed: DeliveryProject, monkeypatch) -> None:
    email = subscribed.addresses[2]
    old_token = make_token("old-secret", LIST_ID, email)
    monkeypatch.setenv("NEWSLETTER_SECRET_PREVIOUS", "old-secret")
    monkeypatch.setenv("NEWSLETTER_SECRET_PREVIOUS_UNTIL", "2000-01-01")
    with running_app(subscribed.config) as origin:
        expired = httpx.post(f"{origin}{PREFIX}/unsubscribe/{old_token}", data=ONE_CLICK)
    assert expired.status_code == 400
    monkeypatch.setenv("NEWSLETTER_SECRET_PREVIOUS_UNTIL", "2999-01-01")
    with running_app(subscribed.config) as origin:
        accepted = httpx.post(f"{origin}{PREFIX}/unsubscribe/{old_token}", data=ONE_CLICK)
    assert accepted.status_code == 200
    assert status_of(subscribed, email) == "unsubscribed"


def test_preferences_change_name_and_language(subscribed: DeliveryProject) -> None:
    email = subscribed.addresses[3]
    with running_app(subscribed.config) as origin:
        url = f"{origin}{PREFIX}/preferences/{token_for(email)}"
        assert 'value="Reader 3"' in httpx.get(url).text
        saved = httpx.post(url, data={"name": "Reader Three", "language": "es"})
    assert saved.status_code == 200  # the page now speaks the language just chosen
    assert gettext_for("es")("Your preferences are saved.") in saved.text
    with sqlite3.connect(subscribed.db) as conn:
        row = conn.execute("SELECT name, language, status FROM subscribers WHERE email = ?",
                           (email,)).fetchone()
    assert row == ("Reader Three", "es", "active")


def test_view_online_serves_the_sent_edition_without_personal_data(
        delivery_project: DeliveryProject) -> None:
    assert delivery_project.cli("send", "--now", NOW) == 0
    with running_app(delivery_project.config) as origin:
        page = httpx.get(f"{origin}{PREFIX}/issues/2026-11")
        missing = httpx.get(f"{origin}{PREFIX}/issues/2031-01")
    assert page.status_code == 200 and "Dear reader," in page.text
    assert "__NL_" not in page.text and "Reader 0" not in page.text
    assert "/unsubscribe/" not in page.text
    assert missing.status_code == 404


def test_a_sent_message_unsubscribes_by_its_own_header_and_the_next_issue_skips_it(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    leaver = delivery_project.addresses[4]
    assert delivery_project.cli("send", "--now", NOW) == 0
    [message] = smtp_script.parsed(leaver)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_url = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"])[1]
    with running_app(delivery_project.config) as origin:
        reply = httpx.post(local(origin, https_url), content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200
    december = (delivery_project.root / "issues" / "2026-11.md").read_text(encoding="utf-8")
    (delivery_project.root / "issues" / "2026-12.md").write_text(
        december.replace("send_at: 2026-11-05T09:00", "send_at: 2026-12-03T09:00"),
        encoding="utf-8")
    (delivery_project.root / "issues" / "2026-12.items.yaml").write_text(
        "issue: 2026-12\npulled_at: '2026-12-01T00:00:00Z'\nwindow: {start: "
        "'2026-11-05T08:00:00Z', end: '2026-12-01T00:00:00Z'}\nitems: []\n", encoding="utf-8")
    assert delivery_project.cli("send", "--now", "2026-12-03T09:30") == 0
    assert leaver not in delivery_project.states("2026-12")
    assert smtp_script.copies()[leaver] == 1
    assert all(smtp_script.copies()[a] == 2 for a in delivery_project.addresses if a != leaver)


def test_view_online_pages_link_the_language_versions_like_the_archive(
        delivery_project: DeliveryProject) -> None:
    import shutil


    for name in ("2026-11.fr.md", "2026-11.fr.items.yaml"):
        shutil.copy(SAMPLE_ISSUES / name, delivery_project.root / "issues" / name)
    assert delivery_project.cli("send", "--now", NOW) == 0
    with running_app(delivery_project.config) as origin:
        english = httpx.get(f"{origin}{PREFIX}/issues/2026-11")
        french = httpx.get(f"{origin}{PREFIX}/issues/2026-11/fr")
    assert 'hreflang="fr"' in english.text and 'hreflang="en"' in french.text
    assert 'lang="fr"' in french.text and "__NL_" not in french.text


def test_serve_answers_the_archive_index_and_feeds_too(delivery_project: DeliveryProject) -> None:
    import feedparser

    assert delivery_project.cli("send", "--now", NOW) == 0
    with running_app(delivery_project.config) as origin:
        index = httpx.get(f"{origin}{PREFIX}/")
        english = httpx.get(f"{origin}{PREFIX}/en/")
        feed = httpx.get(f"{origin}{PREFIX}/en/feed.xml")
        missing = httpx.get(f"{origin}{PREFIX}/xx/feed.xml")
    assert index.status_code == 200 and "Exporting soon?" in index.text  # the subject
    assert english.status_code == 200
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and len(parsed.entries) == 1
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert missing.status_code == 404


def test_a_confirm_link_does_not_resubscribe_after_a_later_unsubscribe_or_a_complaint(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    left, complained = subscribed.addresses[:2]
    with running_app(subscribed.config) as origin:
        for email in (left, complained):
            httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": email})
        deliver_queued(subscribed.config)
        links = {email: confirm_link(smtp_script, email) for email in (left, complained)}
        # After the links were made: one reader leaves, the other reports us as spam.
        httpx.post(f"{origin}{PREFIX}/unsubscribe/{token_for(left)}", data=ONE_CLICK)
        with sqlite3.connect(subscribed.db) as conn:
            conn.execute("UPDATE subscribers SET status = 'complained' WHERE email = ?",
                         (complained,))
        for email in (left, complained):
            assert httpx.post(local(origin, links[email])).status_code == 400
    assert status_of(subscribed, left) == "unsubscribed"
    assert status_of(subscribed, complained) == "complained"
