"""The outgoing-mail queue: claimed before the SMTP transaction, sent once, retried on 4xx,
failed on 5xx, unknown when lost after the final dot; the worker thread end to end."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import dkim
import httpx
import pytest
from conftest_delivery import DeliveryProject
from smtp_server import DROP, Script, ScriptedServer, free_port
from web_server import running_app

from newsletter.config import WebSettings, load_config
from newsletter.deliver.dkimkeys import config_lines, keygen
from newsletter.i18n import gettext_for
from newsletter.model import normalise_mailbox
from newsletter.store import mailqueue as store_mailqueue
from newsletter.store import optin as store_optin
from newsletter.store.connect import open_store
from newsletter.web.mailqueue import LEASE, MailQueue

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def queue_confirmation(project: DeliveryProject, address: str, language: str = "en",
                       name: str = "", now: datetime = T0) -> str:
    """A subscribe request as the form records it; returns its outcome."""
    conn = open_store(project.db)
    try:
        request = store_optin.SubscribeRequest(f"id-{address}", address, normalise_mailbox(address),
                                         name, language, "127.0.0.1")
        return store_optin.record_subscribe_request(conn, request, WebSettings(), now)
    finally:
        conn.close()


def rows(project: DeliveryProject) -> dict[str, tuple]:
    with sqlite3.connect(project.db) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT email, state, attempts, last_reply, next_attempt_at, message_id "
            "FROM mail_queue")}


def queue_for(project: DeliveryProject, clock: Clock) -> MailQueue:
    return MailQueue(load_config(project.config), clock=clock)


def test_a_queued_confirmation_is_sent_once_and_recorded(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    assert queue_confirmation(delivery_project, "ana@example.org") == "queued"
    clock = Clock()
    queue = queue_for(delivery_project, clock)
    assert queue.run_once().sent == 1
    assert queue.run_once().claimed == 0  # sent is final
    state, attempts, reply, _, message_id = rows(delivery_project)["ana@example.org"]
    assert (state, attempts) == ("sent", 1) and reply.startswith("250")
    [message] = smtp_script.parsed("ana@example.org")
    assert message["Message-ID"] == message_id


def test_a_4xx_reply_is_retried_with_backoff_then_sent(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    smtp_script.rcpt["ana@example.org"] = ["451 4.3.0 try again later"]
    queue_confirmation(delivery_project, "ana@example.org")
    clock = Clock()
    queue = queue_for(delivery_project, clock)
    assert queue.run_once().deferred == 1
    state, _, reply, retry_at, _ = rows(delivery_project)["ana@example.org"]
    assert state == "deferred" and reply.startswith("451")
    assert datetime.fromisoformat(retry_at) == T0 + timedelta(minutes=1)
    assert queue.run_once().claimed == 0  # not due yet
    clock.now = T0 + timedelta(minutes=2)
    assert queue.run_once().sent == 1
    assert smtp_script.copies() == {"ana@example.org": 1}


def test_a_5xx_reply_fails_and_the_operator_sees_it(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        caplog: pytest.LogCaptureFixture) -> None:
    smtp_script.rcpt["ana@example.org"] = ["550 5.1.1 no such user"]
    queue_confirmation(delivery_project, "ana@example.org")
    with caplog.at_level(logging.INFO, logger="newsletter.mailqueue"):
        assert queue_for(delivery_project, Clock()).run_once().failed == 1
    assert rows(delivery_project)["ana@example.org"][0] == "failed"
    assert "ana@example.org failed: 550 5.1.1 no such user" in caplog.text


def test_a_message_lost_after_the_final_dot_is_unknown_and_never_resent(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    smtp_script.data["ana@example.org"] = [DROP]
    queue_confirmation(delivery_project, "ana@example.org")
    clock = Clock()
    queue = queue_for(delivery_project, clock)
    assert queue.run_once().unknown == 1
    clock.now = T0 + timedelta(days=1)
    assert queue.run_once().claimed == 0
    assert rows(delivery_project)["ana@example.org"][0] == "unknown"
    assert smtp_script.copies() == {"ana@example.org": 1}  # the server had it


def test_a_claim_left_by_a_crash_becomes_unknown_when_its_lease_runs_out(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    queue_confirmation(delivery_project, "ana@example.org")
    conn = open_store(delivery_project.db)
    try:  # a worker claims the row, then dies before the reply
        [claimed] = store_mailqueue.claim_due_mail(conn, "host:999:dead", T0, 5, LEASE)
    finally:
        conn.close()
    assert claimed.email == "ana@example.org"
    clock = Clock(T0 + timedelta(minutes=1))
    queue = queue_for(delivery_project, clock)
    assert queue.run_once().claimed == 0  # the lease still runs: not ours
    assert rows(delivery_project)["ana@example.org"][0] == "sending"
    clock.now = T0 + LEASE + timedelta(seconds=1)
    assert queue.run_once().claimed == 0
    state, _, reply, _, _ = rows(delivery_project)["ana@example.org"]
    assert state == "unknown" and "may have been sent" in reply
    assert smtp_script.messages == []


def test_claims_are_disjoint_and_one_batch_at_a_time(delivery_project: DeliveryProject) -> None:
    for n in range(8):
        queue_confirmation(delivery_project, f"r{n}@example.org")
    conn = open_store(delivery_project.db)
    try:
        first = store_mailqueue.claim_due_mail(conn, "a", T0, 5, LEASE)
        second = store_mailqueue.claim_due_mail(conn, "b", T0, 5, LEASE)
    finally:
        conn.close()
    assert len(first) == 5 and len(second) == 3
    assert not {m.id for m in first} & {m.id for m in second}


def test_a_relay_that_is_down_defers_and_says_so(
        delivery_project: DeliveryProject, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{free_port()}?timeout=2")
    queue_confirmation(delivery_project, "ana@example.org")
    with caplog.at_level(logging.ERROR, logger="newsletter.mailqueue"):
        assert queue_for(delivery_project, Clock()).run_once().deferred == 1
    assert rows(delivery_project)["ana@example.org"][0] == "deferred"
    assert "relay is unavailable" in caplog.text


def test_deferrals_give_up_after_the_retry_period(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    smtp_script.rcpt["ana@example.org"] = ["451 4.3.0 busy"] * 50
    queue_confirmation(delivery_project, "ana@example.org")
    clock = Clock()
    queue = queue_for(delivery_project, clock)
    while rows(delivery_project)["ana@example.org"][0] != "failed":
        queue.run_once()
        clock.now += timedelta(hours=3)  # every retry is due by then
        assert clock.now < T0 + timedelta(days=2)
    state, attempts, reply, _, _ = rows(delivery_project)["ana@example.org"]
    assert reply.startswith("gave up after 24 h: 451") and 3 < attempts < 12
    assert smtp_script.messages == []


def test_mail_to_an_address_that_bounced_since_it_was_queued_is_suppressed(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    queue_confirmation(delivery_project, "ana@example.org")
    with sqlite3.connect(delivery_project.db) as conn:
        conn.execute("UPDATE subscribers SET status = 'bounced' WHERE email = ?",
                     ("ana@example.org",))
    assert queue_for(delivery_project, Clock()).run_once().claimed == 0
    assert rows(delivery_project)["ana@example.org"][0] == "suppressed"
    assert smtp_script.messages == []


def test_the_confirmation_is_signed_in_two_parts_in_the_readers_language_without_the_name(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    pair = keygen("nl2026", "ipbusiness.example.org", delivery_project.root / "dkim")
    with delivery_project.config.open("a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(config_lines(pair, delivery_project.root)) + "\n")
    queue_confirmation(delivery_project, "ana@example.org", "fr",
                       name="Win a prize! Visit http://evil.example/")
    assert queue_for(delivery_project, Clock()).run_once().sent == 1
    [(_, raw)] = smtp_script.messages
    record = pair.record_value.encode()
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record
                       if name.decode() == pair.record_name + "." else None)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    fr = gettext_for("fr")
    assert message["Subject"] == fr("Please confirm your subscription to %(newsletter)s") % {
        "newsletter": "IP for Business"}
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert re.search(r"https://ipbusiness\.example\.org/newsletter/confirm/\S+", text)
    assert 'lang="fr"' in html and "/confirm/" in html
    assert "prize" not in raw.decode("ascii", "replace") and "evil" not in text + html
    assert message["To"] == "ana@example.org"


def test_the_worker_thread_of_serve_delivers_through_smtp(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    with running_app(delivery_project.config, worker=True) as origin:
        reply = httpx.post(f"{origin}/newsletter/subscribe", data={"email": "ana@example.org"})
        assert reply.status_code == 200
        deadline = time.monotonic() + 10
        while not smtp_script.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    assert smtp_script.copies() == {"ana@example.org": 1}
    assert rows(delivery_project)["ana@example.org"][0] == "sent"


def test_old_requests_unconfirmed_addresses_and_settled_mail_are_forgotten(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    for address in ("ana@example.org", "bea@example.org", "cy@example.org"):
        queue_confirmation(delivery_project, address)
    clock = Clock()
    assert queue_for(delivery_project, clock).run_once().sent == 3
    conn = open_store(delivery_project.db)
    try:
        assert store_optin.confirm_optin_request(conn, "id-bea@example.org", T0, T0) == "confirmed"
    finally:
        conn.close()
    with sqlite3.connect(delivery_project.db) as conn:  # cy's confirmation bounced
        conn.execute("UPDATE subscribers SET status = 'bounced' WHERE email = 'cy@example.org'")
    clock.now = T0 + timedelta(days=31)
    queue_for(delivery_project, clock).run_once()
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT count(*) FROM optin_requests").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM mail_queue").fetchone()[0] == 0
        left = dict(conn.execute("SELECT email, status FROM subscribers WHERE email IN "
                                 "('ana@example.org', 'bea@example.org', 'cy@example.org')"))
    assert left == {"bea@example.org": "active", "cy@example.org": "bounced"}


def test_a_message_that_cannot_be_built_fails_at_once_and_says_why(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        caplog: pytest.LogCaptureFixture) -> None:
    template = delivery_project.root / "templates" / "confirm.txt.j2"
    template.write_text("{{ no_such_value }}\n", encoding="utf-8")
    queue_confirmation(delivery_project, "ana@example.org")
    with caplog.at_level(logging.ERROR, logger="newsletter.mailqueue"):
        assert queue_for(delivery_project, Clock()).run_once().failed == 1
    state, _, reply, _, _ = rows(delivery_project)["ana@example.org"]
    assert state == "failed" and "no_such_value" in reply  # not left `sending`
    assert "cannot be built" in caplog.text and smtp_script.messages == []
