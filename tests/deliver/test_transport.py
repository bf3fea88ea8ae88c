"""SMTP transports: URLs, TLS with certificate verification, rate limits, reply classification."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer

from newsletter.deliver.transport import SmtpTransport, parse_smtp_url
from newsletter.errors import DeliveryError, InputError

NOW = "2026-11-22T10:00"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.mark.parametrize(("url", "message"), [
    ("http://relay.example.org", "must start with smtp://"),
    ("smtp://", "has no host"),
    ("smtps://user:pw@relay.example.org", "must not carry the password"),
    ("smtp://user@relay.example.org", "send the password in clear"),
    ("smtp://relay.example.org:notaport", "bad port"),
])
def test_bad_smtp_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_smtp_url(url)


def test_smtp_url_defaults_ports_and_never_shows_the_password() -> None:
    settings = parse_smtp_url("smtp+starttls://news%40example.org@relay.example.org", "hunter2")
    assert (settings.port, settings.user, settings.password) == (587, "news@example.org", "hunter2")
    assert "hunter2" not in settings.display
    assert parse_smtp_url("smtps://relay.example.org?timeout=5").port == 465
    assert parse_smtp_url("smtps://relay.example.org?timeout=5").timeout == 5.0


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_tls_with_a_trusted_certificate_delivers(
        delivery_project: DeliveryProject, ca: trustme.CA, monkeypatch, implicit: bool) -> None:
    script = Script()
    context = server_context(ca)
    server = ScriptedServer(script, tls_context=None if implicit else context,
                            implicit_tls=context if implicit else None)
    server.start()
    try:
        with ca.cert_pem.tempfile() as bundle:
            monkeypatch.setenv("SSL_CERT_FILE", bundle)
            monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
            assert delivery_project.cli("send", "--now", NOW) == 0
    finally:
        server.stop()
    assert script.copies() == {a: 1 for a in delivery_project.addresses}


def test_untrusted_certificate_stops_the_run_before_any_claim(
        delivery_project: DeliveryProject, ca: trustme.CA, monkeypatch, capsys) -> None:
    script = Script()
    server = ScriptedServer(script, tls_context=server_context(ca))  # CA not trusted here
    server.start()
    try:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert delivery_project.cli("send", "--now", NOW) == 1
    finally:
        server.stop()
    assert "TLS failed" in capsys.readouterr().err
    from faults_table import record

    record("untrusted TLS certificate", "stops before any claim",
           ", ".join(sorted(set(delivery_project.states().values()))), "0 each")
    assert set(delivery_project.states().values()) == {"pending"}
    assert script.messages == []


def test_unreachable_relay_stops_the_run_before_any_claim(
        delivery_project: DeliveryProject, monkeypatch, capsys) -> None:
    from smtp_server import free_port

    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{free_port()}?timeout=2")
    assert delivery_project.cli("send", "--now", NOW) == 1
    assert "cannot connect" in capsys.readouterr().err
    assert set(delivery_project.states().values()) == {"pending"}


def test_one_connection_is_reused_for_many_messages() -> None:
    script = Script()
    with ScriptedServer(script) as server:
        transport = SmtpTransport(parse_smtp_url(server.url))
        before = script.connections
        for n in range(5):
            outcome = transport.send("news@example.org", f"r{n}@example.com",
                                     b"Subject: x\r\n\r\nbody\r\n.leading dot\r\n")
            assert outcome.kind == "sent"
        transport.close()
    assert script.connections - before == 1
    assert b"\r\n.leading dot" in script.messages[0][1]  # dot-stuffing undone by the server


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_rset_after_a_refused_recipient_keeps_the_session_usable(pipelining: bool) -> None:
    script = Script(rcpt={"bad@example.com": ["550 5.1.1 no such user"],
                          "busy@example.com": ["451 4.3.0 try later"]}, pipelining=pipelining)
    with ScriptedServer(script) as server:
        transport = SmtpTransport(parse_smtp_url(server.url))
        assert transport.send("n@example.org", "bad@example.com", b"\r\n").kind == "failed"
        assert transport.send("n@example.org", "busy@example.com", b"\r\n").kind == "deferred"
        assert transport.send("n@example.org", "ok@example.com", b"\r\n").kind == "sent"
        assert transport.smtp.has_extn("pipelining") == pipelining
        transport.close()


def test_login_refused_is_a_delivery_error_naming_the_server_not_the_password() -> None:
    script = Script(password="right")
    with ScriptedServer(script) as server:
        transport = SmtpTransport(parse_smtp_url(f"smtp://u@127.0.0.1:{server.port}", "wrong"))
        with pytest.raises(DeliveryError, match=r"login refused: 535") as info:
            transport.open()
    assert "wrong" not in str(info.value)


def test_rate_limit_holds_in_every_one_second_window(
        tmp_path, monkeypatch) -> None:
    from conftest_delivery import make_delivery_project

    project = make_delivery_project(tmp_path / "nl", 16, connections=3, rate=8)
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    stamps: list[float] = []
    script = Script(on_message=lambda rcpt: stamps.append(time.monotonic()))
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert project.cli("send", "--now", NOW) == 0
    assert len(stamps) == 16
    worst = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    # Spacing 1/rate allows rate + 1 events in a closed 1 s window; the sink stamps a message
    # when its data ends, so one held up on a loaded machine may arrive with the next slot's
    # (+1). No limit, or one per connection, would put all 16 in the first second.
    assert worst <= 8 + 2


def test_the_send_threads_opening_one_new_maildir_at_once_all_get_it(tmp_path) -> None:
    """Each sending thread opens its own transport: the one that finds the folder made by
    another between its check and its mkdir must use it, not stop the run ("File exists")."""
    import sys
    import threading

    from newsletter.deliver.transport import MaildirTransport

    errors: list[Exception] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between any two lines, as a busy host does
    try:
        for n in range(50):
            start = threading.Barrier(4)

            def open_box(path=tmp_path / f"outbox{n}", start=start) -> None:  # noqa: ANN001
                start.wait()
                try:
                    MaildirTransport(path).open()
                except DeliveryError as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=open_box) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert {p.name for p in (tmp_path / "outbox0").iterdir()} == {"tmp", "new", "cur"}
