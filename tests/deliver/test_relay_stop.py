"""Refusals that are the relay's limit, not the reader's (deliver/relay_stop.py): the run stops
and the rows in hand stay `pending`, never `failed` and never deferred toward failing. The
replies are the ones a real Postfix 3.7 gave in tests/deliver/test_postfix_relay.py, played
here by the scripted server so the rules are checked where Postfix is not installed."""

from __future__ import annotations

import pytest
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer, _Handler

from newsletter.deliver.relay_stop import connect_hint, stop_reason

NOW = "2026-11-22T10:00"
# Postfix's own words (smtpd.c, cleanup): message_size_limit, anvil's limits, queue_minfree
TOO_BIG = "552 5.3.4 Error: message file too big"  # after the data
TOO_BIG_SIZE = "552 5.3.4 Message size exceeds fixed limit"  # to MAIL FROM ... SIZE=N
TOO_MUCH_MAIL = "450 4.7.1 Error: too much mail from 127.0.0.1"
TOO_MANY_RECIPIENTS = "450 4.7.1 Error: too many recipients from 127.0.0.1"
NO_ROOM = "452 4.3.1 Insufficient system storage"
UNKNOWN = ("550 5.1.1 <reader001@example.com>: Recipient address rejected: User unknown in "
           "virtual mailbox table")
BUSY = "450 4.2.1 <reader002@example.com>: Recipient address rejected: Mailbox busy, try again"


@pytest.mark.parametrize(("stage", "reply", "stops"), [
    ("DATA-END", TOO_BIG, True),
    ("MAIL", TOO_BIG_SIZE, True),  # a client that declared SIZE= (RFC 1870) hears it at MAIL
    ("DATA-END", "552 Message size exceeds maximum permitted", True),  # Exim: no X.3.4
    ("DATA-END", "552 5.2.2 Mailbox full", False),  # the reader's mailbox
    ("DATA-END", "552 5.2.3 Message length exceeds administrative limit", False),  # per mailbox
    ("DATA-END", "552 mailbox size limit exceeded", False),
    ("RCPT", "552 5.2.2 mailbox full", False),
    ("MAIL", TOO_MUCH_MAIL, True),
    ("MAIL", NO_ROOM, True),  # MAIL names only our reverse-path (RFC 5321 3.3)
    ("MAIL", "451 4.3.0 Temporary lookup failure", True),
    ("RCPT", TOO_MANY_RECIPIENTS, True),  # a rate, whatever the stage
    ("DATA-END", "451 4.7.0 Temporary rate limit exceeded, try again slower", True),
    ("RCPT", BUSY, False),
    ("RCPT", "450 4.7.1 <reader002@example.com>: Recipient address rejected: Greylisted, see "
             "http://postgrey.schweikert.ch/help/example.com.html", False),
    ("DATA-END", NO_ROOM, False),  # after the data: deferred as before
    ("RCPT", UNKNOWN, False),
    ("RCPT", "550 5.7.1 Service unavailable; client host [192.0.2.9] blocked", False),
    # One reader's mailbox takes mail too fast (X.2.x: mailbox status, RFC 3463): stopping the
    # run would stall every run behind that reader, who is first in line again next time.
    ("RCPT", "452 4.2.1 The user you are trying to contact is receiving mail at a rate that "
             "prevents additional messages from being delivered", False),
    ("DATA-END", "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
     False),
])
def test_which_refusals_stop_the_run(stage: str, reply: str, stops: bool) -> None:
    assert bool(stop_reason(int(reply[:3]), reply, stage, 10240)) == stops


@pytest.mark.parametrize(("reply", "hinted"), [
    ("421 4.7.0 relay.test Error: too many connections from 127.0.0.1", True),  # Postfix
    ("421 4.7.0 mx.example Too many concurrent SMTP connections from this IP address", True),
    ("421 4.3.2 Service shutting down", False),  # the relay, not our connections
    ("554 5.7.1 Access denied", False),
])
def test_a_greeting_refused_for_our_connections_names_the_setting(reply: str,
                                                                  hinted: bool) -> None:
    assert ("[delivery] connections lower" in connect_hint(int(reply[:3]), reply)) is hinted


def test_the_size_stop_names_the_relays_limit_when_it_gave_one() -> None:
    assert "its limit is 10,240 bytes (EHLO SIZE)" in stop_reason(552, TOO_BIG, "DATA-END", 10240)
    assert "it did not say its limit" in stop_reason(552, TOO_BIG, "DATA-END", 0)


def _no_reader_blamed(project: DeliveryProject) -> dict[str, str]:
    states = project.states()
    assert "failed" not in states.values() and "deferred" not in states.values()
    return states


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_message_too_large_for_the_relay_stops_the_run_and_fails_nobody(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys, pipelining: bool) -> None:
    smtp_script.pipelining = pipelining
    smtp_script.data = {a: [TOO_BIG] for a in delivery_project.addresses}
    assert delivery_project.cli("send", "--now", NOW) == 1
    [line] = [x for x in capsys.readouterr().err.splitlines() if "too large" in x]
    assert TOO_BIG in line and "its limit is 33,554,432 bytes" in line  # aiosmtpd's SIZE
    assert set(_no_reader_blamed(delivery_project).values()) == {"pending"}
    smtp_script.data = {}  # the operator shortened the issue or raised the limit
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}


class _MailLimit(_Handler):
    """Postfix's smtpd_client_message_rate_limit: MAIL refused once `allow` messages came."""

    allow = 3

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: ANN001, ANN201, N802
        if len(self.script.messages) >= self.allow:
            return TOO_MUCH_MAIL
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"


def test_a_refused_mail_from_stops_the_run_and_the_next_run_sends_the_rest(
        delivery_project: DeliveryProject, smtp_script: Script, monkeypatch, capsys) -> None:
    server = ScriptedServer(smtp_script)
    server.handler = handler = _MailLimit(smtp_script)
    server.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
    try:
        assert delivery_project.cli("send", "--now", NOW) == 1
        assert TOO_MUCH_MAIL in capsys.readouterr().err
        states = _no_reader_blamed(delivery_project)
        sent = [a for a, state in states.items() if state == "sent"]
        assert 3 <= len(sent) < 6 and "pending" in states.values()  # (2 connections race)
        assert smtp_script.copies() == {a: 1 for a in sent}
        handler.allow = 100  # the relay's window has passed
        assert delivery_project.cli("send", "--now", NOW) == 0
    finally:
        server.stop()
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}


def test_a_recipient_rate_limit_at_rcpt_stops_the_run_not_the_reader(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    target = delivery_project.addresses[3]
    smtp_script.rcpt[target] = [TOO_MANY_RECIPIENTS]
    assert delivery_project.cli("send", "--now", NOW) == 1
    assert TOO_MANY_RECIPIENTS in capsys.readouterr().err
    assert _no_reader_blamed(delivery_project)[target] == "pending"
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}
