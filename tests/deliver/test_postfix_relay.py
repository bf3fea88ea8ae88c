"""`newsletter send` through a real Postfix (tests/postfix_relay.py: a private instance per
test, skipped where Postfix is not installed): every reader delivered once, the replies Postfix
really gives for unknown users, a size limit, its anvil rate limits and STARTTLS, and what the
ledger makes of each. No reader is failed or deferred for a limit that is ours.

The replies quoted in the asserts are Postfix 3.7's own; tests/deliver/test_relay_stop.py
plays the same replies from the scripted server, so the rules run without Postfix too.
"""

from __future__ import annotations

import sqlite3
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import trustme
from conftest_delivery import DeliveryProject, make_delivery_project
from postfix_relay import PostfixRelay, postfix_relay  # noqa: F401 - the fixture

from newsletter.deliver import smtp_pipeline

NOW = "2026-11-22T10:00"
LATER = "2026-11-22T11:00"  # past a first deferral's retry (5 min)
JOINED = b"\r\n.\r\nMAIL FROM:<"  # a message's final dot and the next envelope in one write
WINDOW = 2  # anvil_rate_time_unit in the rate tests, seconds


def set_delivery(project: DeliveryProject, **values: object) -> None:
    """[delivery] settings for this project (connections, processes)."""
    text = project.config.read_text(encoding="utf-8")
    for key in values:
        text = "\n".join(line for line in text.split("\n")
                         if not line.startswith(f"{key} ="))
    lines = "".join(f"{k} = {v}\n" for k, v in values.items())
    project.config.write_text(text.replace("[delivery]\n", f"[delivery]\n{lines}", 1),
                              encoding="utf-8")


def replies(project: DeliveryProject) -> dict[str, tuple[str, str]]:
    """Each reader's (state, last reply) in the ledger."""
    with sqlite3.connect(project.db) as conn:
        rows = conn.execute(
            "SELECT s.email, d.state, d.last_reply FROM deliveries d JOIN subscribers s "
            "ON s.id = d.subscriber_id WHERE d.issue = ?", ("2026-11",)).fetchall()
    return {email: (state, reply) for email, state, reply in rows}


def message_ids(project: DeliveryProject) -> dict[str, str]:
    with sqlite3.connect(project.db) as conn:
        rows = conn.execute(
            "SELECT s.email, d.message_id FROM deliveries d JOIN subscribers s "
            "ON s.id = d.subscriber_id WHERE d.issue = ?", ("2026-11",)).fetchall()
    return dict(rows)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    return make_delivery_project(tmp_path / "nl", 6, connections=2)


def through(relay: PostfixRelay, monkeypatch: pytest.MonkeyPatch, scheme: str = "smtp") -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", relay.url(scheme))


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_each_reader_is_delivered_once_and_a_second_send_sends_nothing(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys,  # noqa: F811
        pipelining: bool) -> None:
    relay = postfix_relay(settings={} if pipelining else
                          {"smtpd_discard_ehlo_keywords": "pipelining"})
    through(relay, monkeypatch)
    set_delivery(project, processes=1)  # the writes are seen in this process
    writes: list[bytes] = []
    real = smtp_pipeline.Session.write

    def recording(self, data, commands: bytes = b"") -> None:  # noqa: ANN001
        writes.append(b"".join([data] if isinstance(data, bytes) else data) + commands)
        real(self, data, commands)

    monkeypatch.setattr(smtp_pipeline.Session, "write", recording)
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {a: 1 for a in project.addresses}
    assert {s for s, _ in replies(project).values()} == {"sent"}
    assert all(r.startswith("250 2.0.0 Ok: queued as ") for _, r in replies(project).values())
    assert any(JOINED in w for w in writes) == pipelining  # Postfix offers PIPELINING
    for address, message_id in message_ids(project).items():  # each reader's own message
        [copy] = relay.messages(address)
        parsed = message_from_bytes(copy, policy=policy.default)
        assert (parsed["Message-ID"], parsed["To"].addresses[0].addr_spec) == (
            message_id, address)
    capsys.readouterr()
    assert project.cli("send", "--now", LATER) == 0
    assert "nothing to send" in capsys.readouterr().out
    assert relay.delivered() == {a: 1 for a in project.addresses}


def test_unknown_users_fail_busy_ones_are_retried_and_nobody_else_is_touched(
        project: DeliveryProject, postfix_relay, monkeypatch) -> None:  # noqa: F811
    a = project.addresses
    dead, busy = {a[1], a[4]}, a[2]
    relay = postfix_relay(mailboxes=frozenset(set(a) - dead),
                          refuse={busy: "450 4.2.1 Mailbox busy, try again later"})
    through(relay, monkeypatch)
    assert project.cli("send", "--now", NOW) == 0
    seen = replies(project)
    for address in dead:
        assert seen[address] == ("failed", f"550 5.1.1 <{address}>: Recipient address "
                                 "rejected: User unknown in virtual mailbox table")
    assert seen[busy] == ("deferred", f"450 4.2.1 <{busy}>: Recipient address rejected: "
                          "Mailbox busy, try again later")
    others = [x for x in a if x not in dead and x != busy]
    assert all(seen[x][0] == "sent" for x in others)
    relay.reload(refuse={})  # the mailbox is free again
    assert project.cli("send", "--now", LATER) == 0
    assert replies(project)[busy][0] == "sent"
    assert relay.delivered() == {x: 1 for x in a if x not in dead}
    assert {replies(project)[x][0] for x in dead} == {"failed"}


def test_a_session_closed_for_too_many_errors_is_reopened_and_nobody_else_is_touched(
        project: DeliveryProject, postfix_relay, monkeypatch) -> None:  # noqa: F811
    # Postfix counts each refusal (a refused RCPT and the DATA after it: two) and closes the
    # session at smtpd_hard_error_limit with "421 4.7.0 relay.test Error: too many errors"
    a = project.addresses
    dead = set(a[1:4])
    relay = postfix_relay(mailboxes=frozenset(set(a) - dead),
                          settings={"smtpd_soft_error_limit": "1", "smtpd_hard_error_limit": "4",
                                    "smtpd_error_sleep_time": "0s"})
    through(relay, monkeypatch)
    set_delivery(project, connections=1)
    assert project.cli("send", "--now", NOW) == 0
    seen = replies(project)
    assert {seen[x][0] for x in dead} == {"failed"}
    assert all("User unknown in virtual mailbox table" in seen[x][1] for x in dead)
    assert relay.delivered() == {x: 1 for x in a if x not in dead}
    assert "too many errors" in relay.log()  # the relay did close the session


def test_a_message_over_the_size_limit_stops_the_run_and_fails_nobody(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys) -> None:  # noqa: F811
    relay = postfix_relay(settings={"message_size_limit": "4096"})
    through(relay, monkeypatch)
    assert project.cli("send", "--now", NOW) == 1
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "too large" in x]
    assert "552 5.3.4 Error: message file too big" in line  # Postfix after the data
    assert "its limit is 4,096 bytes" in line
    assert {s for s, _ in replies(project).values()} == {"pending"}  # not failed, not deferred
    assert relay.delivered() == {}
    relay.reload(settings={"message_size_limit": "10240000"})  # the operator raises it
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}


def test_a_full_queue_stops_the_run_and_defers_nobody(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys) -> None:  # noqa: F811
    # queue_minfree above the disk's free space: Postfix's answer when its queue is full
    relay = postfix_relay(settings={"queue_minfree": str(2**62)})
    through(relay, monkeypatch)
    assert project.cli("send", "--now", NOW) == 1
    assert "452 4.3.1 Insufficient system storage" in capsys.readouterr().err
    assert {s for s, _ in replies(project).values()} == {"pending"}
    relay.reload(settings={})  # room again
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}


@pytest.mark.parametrize(("limit", "reply"), [
    ("smtpd_client_message_rate_limit", "450 4.7.1 Error: too much mail from 127.0.0.1"),
    ("smtpd_client_recipient_rate_limit", "450 4.7.1 Error: too many recipients from 127.0.0.1"),
], ids=["messages", "recipients"])
def test_a_rate_limit_stops_the_run_and_the_next_run_finishes(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys,  # noqa: F811
        limit: str, reply: str) -> None:
    relay = postfix_relay(settings={limit: "4", "anvil_rate_time_unit": f"{WINDOW}s"})
    through(relay, monkeypatch)
    set_delivery(project, connections=1)
    assert project.cli("send", "--now", NOW) == 1
    assert reply in capsys.readouterr().err
    states = [replies(project)[x][0] for x in project.addresses]
    assert states == ["sent"] * 4 + ["pending"] * 2  # the rest waits, never deferred or failed
    time.sleep(WINDOW + 0.5)  # the relay's window passes; cron's next run
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}


def test_too_many_connections_stops_the_run_before_any_claim(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys) -> None:  # noqa: F811
    relay = postfix_relay(settings={"smtpd_client_connection_rate_limit": "1",
                                    "anvil_rate_time_unit": f"{WINDOW}s"})
    through(relay, monkeypatch)
    assert project.cli("send", "--now", NOW) == 1  # 2 connections at once, 1 allowed
    err = capsys.readouterr().err
    assert "421 4.7.0 relay.test Error: too many connections from 127.0.0.1" in err
    assert "set [delivery] connections lower" in err
    assert {s for s, _ in replies(project).values()} == {"pending"}
    set_delivery(project, connections=1)
    time.sleep(WINDOW + 0.5)
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_relay(postfix_relay, ca: trustme.CA) -> PostfixRelay:  # noqa: ANN001, F811
    cert = ca.issue_cert("127.0.0.1", "localhost")
    return postfix_relay(
        files={"cert.pem": b"".join(c.bytes() for c in cert.cert_chain_pems),
               "key.pem": cert.private_key_pem.bytes()},
        settings={"smtpd_tls_security_level": "may",
                  "smtpd_tls_cert_file": "{etc}/cert.pem",
                  "smtpd_tls_key_file": "{etc}/key.pem"})


def test_starttls_with_a_trusted_certificate_delivers_over_tls(
        project: DeliveryProject, postfix_relay, monkeypatch, ca: trustme.CA,  # noqa: F811
        tmp_path: Path) -> None:
    relay = tls_relay(postfix_relay, ca)
    through(relay, monkeypatch, "smtp+starttls")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}
    assert "TLS connection established from" in relay.log()


def test_starttls_with_an_untrusted_certificate_stops_before_any_claim(
        project: DeliveryProject, postfix_relay, monkeypatch, ca: trustme.CA,  # noqa: F811
        capsys) -> None:
    relay = tls_relay(postfix_relay, ca)  # this CA is not in the client's trust store
    through(relay, monkeypatch, "smtp+starttls")
    assert project.cli("send", "--now", NOW) == 1
    err = capsys.readouterr().err
    assert "TLS failed" in err and "CERTIFICATE_VERIFY_FAILED" in err
    assert {s for s, _ in replies(project).values()} == {"pending"}
    assert relay.delivered() == {}


def test_smtp_auth_logs_in_and_a_refused_login_stops_before_any_claim(
        project: DeliveryProject, postfix_relay, monkeypatch, capsys) -> None:  # noqa: F811
    relay = postfix_relay(logins={"news": "right-password"})
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://news@127.0.0.1:{relay.port}?timeout=5")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "wrong-password")
    assert project.cli("send", "--now", NOW) == 1
    err = capsys.readouterr().err
    assert "login refused: 535 5.7.8 Error: authentication failed" in err
    assert {s for s, _ in replies(project).values()} == {"pending"}
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "right-password")
    assert project.cli("send", "--now", NOW) == 0
    assert relay.delivered() == {x: 1 for x in project.addresses}
    assert "sasl_method=PLAIN, sasl_username=news" in relay.log()
