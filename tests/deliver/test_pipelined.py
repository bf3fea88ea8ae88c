"""The pipelined send (deliver/pipelined.py, smtp_pipeline.py) against the aiosmtpd server:
one write a message (its data with the next envelope, RFC 2920), every reply read in order,
and each refusal, loss and stop handled as the one-by-one path handles it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from conftest_delivery import DeliveryProject, make_delivery_project
from smtp_server import DROP, Script, ScriptedServer

from newsletter.deliver import smtp_pipeline
from newsletter.deliver.smtp_data import data_payload
from newsletter.deliver.transport import SmtpTransport, parse_smtp_url

NOW = "2026-11-22T10:00"
JOINED = b"\r\n.\r\nMAIL FROM:<"  # a message's final dot and the next envelope in one write


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the SMTP sessions make after their login, in order."""
    seen: list[bytes] = []
    real = smtp_pipeline.Session.write

    def recording(self: smtp_pipeline.Session, data, commands: bytes = b"") -> None:  # noqa: ANN001
        seen.append(b"".join([data] if isinstance(data, bytes) else data) + commands)
        real(self, data, commands)

    monkeypatch.setattr(smtp_pipeline.Session, "write", recording)
    return seen


@pytest.fixture
def project(tmp_path, monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    """8 readers, one connection, one batch of 8: every message after the first can join."""
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    return make_delivery_project(tmp_path / "nl", 8, connections=1, batch_size=8)


def serve(script: Script, monkeypatch: pytest.MonkeyPatch, **kwargs) -> ScriptedServer:  # noqa: ANN003
    server = ScriptedServer(script, **kwargs)
    server.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
    server.before = script.connections  # the controller's own check when it starts is one
    return server


def sessions(running: list[ScriptedServer]) -> int:
    """The SMTP sessions the send opened."""
    return running[0].script.connections - running[0].before


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ScriptedServer]]:
    servers: list[ScriptedServer] = []
    yield servers
    for server in servers:
        server.stop()


def send(project: DeliveryProject, script: Script, running: list[ScriptedServer],
         monkeypatch: pytest.MonkeyPatch, **kwargs) -> int:  # noqa: ANN003
    running.append(serve(script, monkeypatch, **kwargs))
    return project.cli("send", "--now", NOW)


def test_each_message_goes_in_one_write_with_the_next_envelope(
        project: DeliveryProject, writes: list[bytes], running, monkeypatch) -> None:
    script = Script()
    assert send(project, script, running, monkeypatch) == 0
    assert script.copies() == {a: 1 for a in project.addresses}
    assert sum(JOINED in w for w in writes) == 7  # 8 messages: 7 joins, the last dot alone
    assert len(writes) == 1 + 7 + 1  # the first envelope, 7 joined, the last data
    assert set(project.states().values()) == {"sent"}


def test_a_relay_without_pipelining_gets_one_command_at_a_time(
        project: DeliveryProject, writes: list[bytes], running, monkeypatch) -> None:
    script = Script(pipelining=False)
    assert send(project, script, running, monkeypatch) == 0
    assert script.copies() == {a: 1 for a in project.addresses}
    assert not any(JOINED in w for w in writes)
    assert not any(w.count(b"\r\n") > 1 and w.startswith(b"MAIL") for w in writes)


@pytest.mark.parametrize(("stage", "reply", "state"), [
    ("rcpt", "451 4.3.0 try later", "deferred"),
    ("rcpt", "550 5.1.1 no such user", "failed"),
    ("data", "554 5.6.0 message refused", "failed"),
    ("data", "452 4.3.1 insufficient system storage", "deferred"),
])
def test_a_refusal_mid_batch_settles_that_reader_and_the_pipeline_goes_on(
        project: DeliveryProject, running, monkeypatch, stage: str, reply: str,
        state: str) -> None:
    target = project.addresses[3]
    script = Script()
    getattr(script, stage)[target] = [reply]
    assert send(project, script, running, monkeypatch) == 0
    states = project.states()
    assert states[target] == state
    assert all(states[a] == "sent" for a in project.addresses if a != target)
    assert [script.copies()[a] for a in project.addresses] == [1, 1, 1, 0, 1, 1, 1, 1]
    assert sessions(running) == 1  # the session stayed usable: no reconnect


def test_a_multi_line_refusal_is_read_whole_before_the_next_envelopes_replies(
        project: DeliveryProject, running, monkeypatch) -> None:
    target = project.addresses[2]
    script = Script(data={target: ["550-5.7.26 Unauthenticated email from example.org is\r\n"
                                   "550 5.7.26 not accepted due to domain's DMARC policy"]})
    assert send(project, script, running, monkeypatch) == 0
    states = project.states()
    assert states[target] == "deferred"  # ours, not the reader's: never `failed`
    assert all(states[a] == "sent" for a in project.addresses if a != target)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_policy_refusals_stop_before_another_envelope_goes(
        project: DeliveryProject, running, monkeypatch, capsys, stage: str) -> None:
    """Five 5.7.x in a row stop the run: the fifth message is the last whose envelope the
    server sees (pipelining stops at the first refusal of a streak)."""
    refusal = "550 5.7.1 Service unavailable; client host [192.0.2.9] blocked"
    script = Script()
    setattr(script, stage, {a: [refusal] for a in project.addresses})
    assert send(project, script, running, monkeypatch) == 1
    seen = [a for a in project.addresses if not getattr(script, stage)[a]]  # reply taken
    assert seen == project.addresses[:5]
    states = project.states()
    assert "failed" not in states.values() and "sent" not in states.values()
    assert "policy rejections in a row" in capsys.readouterr().err


def test_a_connection_lost_after_a_joined_write_is_unknown_and_the_next_is_retried(
        project: DeliveryProject, running, monkeypatch) -> None:
    """The server takes message 3, then closes without a reply: 3 is `unknown` (it has it),
    and 4, whose envelope was in the same write, goes again on a new session."""
    dropped = project.addresses[3]
    script = Script(data={dropped: [DROP]})
    assert send(project, script, running, monkeypatch) == 1  # an unknown row needs a look
    states = project.states()
    assert states[dropped] == "unknown"
    assert all(states[a] == "sent" for a in project.addresses if a != dropped)
    assert script.copies() == {a: 1 for a in project.addresses}
    assert sessions(running) == 2


def test_sessions_closed_by_the_relay_mid_batch_reconnect_and_send_each_once(
        project: DeliveryProject, running, monkeypatch) -> None:
    script = Script(close_after=3)  # 421 at the MAIL after every third message, then closed
    assert send(project, script, running, monkeypatch) == 0
    assert script.copies() == {a: 1 for a in project.addresses}
    assert sessions(running) == 3


def test_a_relay_gone_mid_batch_stops_the_run_and_leaves_the_rest_pending(
        project: DeliveryProject, running, monkeypatch, capsys) -> None:
    """The relay stops listening, then drops the session: no new session opens, so the run
    stops; nothing is sent twice, nothing is marked failed."""
    dropped = project.addresses[3]
    script = Script(data={dropped: [DROP]})
    server = serve(script, monkeypatch)
    running.append(server)

    def stop_listening(rcpt: str) -> None:
        if rcpt == project.addresses[1]:
            server.loop.call_soon_threadsafe(server.server.close)

    script.on_message = stop_listening
    assert project.cli("send", "--now", NOW) == 1
    states = project.states()
    assert "cannot connect" in capsys.readouterr().err
    assert states[dropped] == "unknown"
    assert [states[a] for a in project.addresses[:3]] == ["sent"] * 3
    assert {states[a] for a in project.addresses[4:]} == {"pending"}
    assert all(n <= 1 for n in script.copies().values())


def test_starttls_sessions_pipeline_too(tmp_path, writes: list[bytes], monkeypatch) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    script = Script()
    with ca.cert_pem.tempfile() as bundle, ScriptedServer(script, tls_context=context) as server:
        monkeypatch.setenv("SSL_CERT_FILE", bundle)
        transport = SmtpTransport(parse_smtp_url(server.url))
        transport.open()
        assert isinstance(transport.session.sock, ssl.SSLSocket) and transport.pipelining
        outcomes = []
        for n in range(3):  # the steps the pipeline makes, by hand
            held = n > 0
            commands = smtp_pipeline.envelope("n@example.org", f"r{n}@example.com")
            assert transport.push(data_payload(b"Subject: x\r\n\r\n.dot\r\n") if held else b"",
                                  commands) is None
            if held:
                outcomes.append(transport.end())
            assert transport.accepted() is None
        assert transport.push(data_payload(b"Subject: x\r\n\r\n.dot\r\n"), b"") is None
        outcomes.append(transport.end())
        transport.close()
    assert [o.kind for o in outcomes] == ["sent"] * 3
    assert [r for r, _ in script.messages] == ["r0@example.com", "r1@example.com",
                                               "r2@example.com"]
    assert b"\r\n.dot" in script.messages[0][1]  # the server undid the dot-stuffing
    assert sum(JOINED in w for w in writes) == 2


def test_data_whose_session_is_gone_is_never_written_on_a_new_one() -> None:
    script = Script()
    with ScriptedServer(script) as server:
        transport = SmtpTransport(parse_smtp_url(server.url))
        transport.open()
        opened = script.connections
        assert transport.push(b"", smtp_pipeline.envelope("n@example.org", "r@example.com")) \
            is None
        assert transport.accepted() is None  # 354: the data may go, on this session only
        transport._drop()
        outcome = transport.push(data_payload(b"Subject: x\r\n\r\nbody\r\n"), b"")
        assert outcome is not None and outcome.kind == "retry"
        assert script.connections == opened and script.messages == []
