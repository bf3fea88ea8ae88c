"""`newsletter send` against a real SMTP server (aiosmtpd on 127.0.0.1) and the Maildir default."""

from __future__ import annotations

import sqlite3

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project, set_batch_size
from faults_table import record
from smtp_server import BEFORE_DATA, DROP, HANG, MID_DATA, Script, ScriptedServer

NOW = "2026-11-22T10:00"


def test_send_delivers_one_copy_to_every_subscriber_and_records_message_ids(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}
    assert set(delivery_project.states().values()) == {"sent"}
    with sqlite3.connect(delivery_project.db) as conn:
        ids = [r[0] for r in conn.execute("SELECT message_id FROM deliveries")]
    msg = smtp_script.parsed(delivery_project.addresses[0])[0]
    assert msg["Message-ID"] in ids and len(set(ids)) == len(ids)
    out = capsys.readouterr().out
    assert "sent 6, deferred 0, failed 0, unknown 0, skipped 0 in" in out.splitlines()[-1]


def test_second_send_does_nothing_and_opens_no_connection(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    assert delivery_project.cli("send", "--now", NOW) == 0
    connections = smtp_script.connections
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.connections == connections
    assert sum(smtp_script.copies().values()) == 6
    assert "nothing to send" in capsys.readouterr().out


def test_without_smtp_url_messages_go_to_the_outbox_maildir(
        delivery_project: DeliveryProject, capsys) -> None:
    assert delivery_project.cli("send", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert len(list((delivery_project.root / "outbox" / "new").iterdir())) == 6
    assert "outbox/new" in out and "NEWSLETTER_SMTP_URL" in out


def test_4xx_is_deferred_and_retried_by_a_later_run_once_due(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    a, b = delivery_project.addresses[:2]
    smtp_script.rcpt[a] = ["451 4.3.0 try again later"]
    smtp_script.data[b] = ["452 4.2.2 mailbox full"]
    assert delivery_project.cli("send", "--now", NOW) == 0
    record("451 at RCPT, 452 at end of data", "deferred, retried once due",
           f"{delivery_project.states()[a]}, {delivery_project.states()[b]}", "")
    assert delivery_project.states()[a] == "deferred"
    assert delivery_project.states()[b] == "deferred"
    assert delivery_project.cli("send", "--now", "2026-11-22T10:01") == 0  # not due yet
    assert a not in smtp_script.copies()
    assert delivery_project.cli("send", "--now", "2026-11-22T10:30") == 0
    assert delivery_project.states()[a] == "sent" and delivery_project.states()[b] == "sent"
    assert smtp_script.copies() == {x: 1 for x in delivery_project.addresses}


def test_5xx_is_failed_and_status_lists_the_address_with_the_reply(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    a, b = delivery_project.addresses[:2]
    smtp_script.rcpt[a] = ["550 5.1.1 no such user"]
    smtp_script.data[b] = ["554 5.6.0 message refused"]
    assert delivery_project.cli("send", "--now", NOW) == 0
    record("550 5.1.1 at RCPT, 554 at end of data", "failed with the reply",
           f"{delivery_project.states()[a]}, {delivery_project.states()[b]}",
           f"{smtp_script.copies()[a]}, {smtp_script.copies()[b]}")
    assert delivery_project.states()[a] == "failed"
    assert delivery_project.states()[b] == "failed"
    capsys.readouterr()
    assert delivery_project.cli("status") == 0
    out = capsys.readouterr().out
    assert f"failed   {a}  550 5.1.1 no such user" in out
    assert "sent 4" in out and "failed 2" in out


def test_421_and_closed_sessions_reconnect_transparently(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    smtp_script.close_after = 2
    smtp_script.rcpt[delivery_project.addresses[0]] = ["421 4.7.0 too busy, closing"]
    assert delivery_project.cli("send", "--now", NOW) == 0
    record("421 at RCPT; session closed after every 2 messages", "reconnect, all sent once",
           f"{smtp_script.connections} connections",
           f"{sorted(set(smtp_script.copies().values()))} each")
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}
    assert smtp_script.connections > 2


def test_connection_dropped_mid_data_after_the_whole_message_was_written_is_unknown(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    """The server aborts (RST) while the client has already written everything: from the
    client's side this cannot be told apart from a loss after the final dot, so it is
    `unknown`, never resent automatically (a duplicate would be worse than a gap)."""
    a = delivery_project.addresses[3]
    smtp_script.data[a] = [MID_DATA]
    assert delivery_project.cli("send", "--now", NOW) == 1
    record("connection reset mid-DATA (message already written)", "unknown, never resent",
           delivery_project.states()[a], str(smtp_script.copies()[a]))
    assert delivery_project.states()[a] == "unknown"
    assert all(smtp_script.copies()[x] == 1 for x in delivery_project.addresses if x != a)
    assert smtp_script.copies()[a] == 0


def test_no_reply_after_the_final_dot_is_unknown_and_never_resent_without_the_flag(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    dropped, hung = delivery_project.addresses[1:3]
    smtp_script.data[dropped] = [DROP]
    smtp_script.data[hung] = [HANG]
    assert delivery_project.cli("send", "--now", NOW) == 1  # unknown rows need a look
    states = delivery_project.states()
    record("no reply after the final dot (closed / timed out)", "unknown, never resent",
           f"{states[dropped]}, {states[hung]}",
           f"{smtp_script.copies()[dropped]}, {smtp_script.copies()[hung]}")
    assert states[dropped] == "unknown" and states[hung] == "unknown"
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies()[dropped] == 1
    capsys.readouterr()
    delivery_project.cli("status", "2026-11")
    assert f"unknown  {dropped}" in capsys.readouterr().out
    assert delivery_project.cli("send", "2026-11", "--resend-unknown", "--now", NOW) == 0
    assert smtp_script.copies()[dropped] == 2  # the operator chose to risk a duplicate
    assert delivery_project.states()[dropped] == "sent"


def test_a_run_of_policy_rejections_stops_the_send_without_failing_anyone(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    smtp_script.rcpt_default = "550 5.7.1 Service unavailable; client host blocked"
    assert delivery_project.cli("send", "--now", NOW) == 1
    states = delivery_project.states()
    record("550 5.7.1 for every recipient", "stops after 5 in a row, nobody failed",
           ", ".join(sorted(set(states.values()))), "0 each")
    assert "failed" not in states.values() and "sent" not in states.values()
    assert "policy rejections in a row" in capsys.readouterr().err


def test_refused_login_stops_the_run_before_any_claim(
        delivery_project: DeliveryProject, monkeypatch, capsys) -> None:
    script = Script(password="right")
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://user@127.0.0.1:{server.port}")
        monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "wrong")
        assert delivery_project.cli("send", "--now", NOW) == 1
    assert set(delivery_project.states().values()) == {"pending"}
    err = capsys.readouterr().err
    record("535 at login", "stops before any claim", "all pending", "0 each")
    assert "login refused: 535" in err and "wrong" not in err


def test_unsubscribe_during_a_send_stops_later_messages_to_that_address(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    set_batch_size(delivery_project, 1)  # one row a claim: every later claim sees it
    last = delivery_project.addresses[-1]

    def unsubscribe_last(rcpt: str) -> None:
        with sqlite3.connect(delivery_project.db, timeout=10) as conn:
            conn.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE email = ?",
                         (last,))

    smtp_script.on_message = unsubscribe_last
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert last not in smtp_script.copies()
    assert delivery_project.states()[last] == "suppressed"


def test_an_unsubscribe_during_a_send_is_honoured_from_the_next_batch_on(
        tmp_path, smtp_server: ScriptedServer, smtp_script: Script, monkeypatch) -> None:
    """Suppression is judged when a batch is claimed: a reader who unsubscribes while their
    row is in the batch in hand still gets this issue; one in a later batch does not."""
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    project = make_delivery_project(tmp_path / "b", 12, connections=1, batch_size=3)
    in_hand, later = project.addresses[2], project.addresses[-1]

    def unsubscribe(rcpt: str) -> None:
        if rcpt == project.addresses[0]:
            with sqlite3.connect(project.db, timeout=10) as conn:
                conn.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE email IN "
                             "(?, ?)", (in_hand, later))

    smtp_script.on_message = unsubscribe
    assert project.cli("send", "--now", NOW) == 0
    states = project.states()
    assert (states[in_hand], smtp_script.copies()[in_hand]) == ("sent", 1)
    assert states[later] == "suppressed" and later not in smtp_script.copies()


def test_schedule_sends_only_once_send_at_has_come(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    assert delivery_project.cli("send", "--now", "2026-11-05T08:59") == 0  # 09:00 Zurich
    assert smtp_script.copies() == {}
    assert "waiting: 2026-11 at 2026-11-05 09:00" in capsys.readouterr().out
    assert delivery_project.cli("send", "--now", "2026-11-05T09:00") == 0
    assert sum(smtp_script.copies().values()) == 6


def test_dry_run_renders_everything_and_sends_nothing(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    before = smtp_script.connections  # the controller's own readiness probe
    assert delivery_project.cli("send", "--dry-run", "--now", NOW) == 0
    assert smtp_script.connections == before
    assert "dry run: would send 6 message(s) for 2026-11" in capsys.readouterr().out
    assert delivery_project.states() == {}
    assert not (delivery_project.root / "outbox").exists()
    with sqlite3.connect(delivery_project.db) as conn:  # the CSV was read, not imported
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_dry_run_before_send_at_writes_no_snapshot(
        delivery_project: DeliveryProject, capsys) -> None:
    snapshot = delivery_project.root / "issues" / "2026-11.items.yaml"
    snapshot.unlink()
    assert delivery_project.cli("send", "2026-11", "--dry-run", "--now", "2026-11-01T10:00") == 0
    assert not snapshot.exists()  # the real send pulls with the window ending at send_at
    assert "dry run: would send 6 message(s)" in capsys.readouterr().out


def test_a_refused_test_send_exits_1_and_shows_the_reply(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    smtp_script.rcpt["editor@example.org"] = ["550 5.1.1 no such user"]
    assert delivery_project.cli("send", "2026-11", "--to", "editor@example.org") == 1
    assert "editor@example.org: failed: 550 5.1.1 no such user" in capsys.readouterr().err


def test_send_of_one_language_edition_is_refused_with_exit_2(
        delivery_project: DeliveryProject, capsys) -> None:
    french = delivery_project.root / "issues" / "2026-11.fr.md"
    french.write_text((delivery_project.root / "issues" / "2026-11.md").read_text(
        encoding="utf-8"), encoding="utf-8")
    assert delivery_project.cli("send", "2026-11.fr", "--now", NOW) == 2
    assert "its language editions go with it" in capsys.readouterr().err


def test_test_send_marks_the_subject_and_leaves_the_ledger_alone(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    assert delivery_project.cli("send", "2026-11", "--to", "Editor@Example.org") == 0
    [msg] = smtp_script.parsed("editor@example.org")
    assert msg["Subject"].startswith("[TEST] ")
    assert delivery_project.states() == {}


def test_a_second_concurrent_send_exits_0_saying_another_is_running(
        delivery_project: DeliveryProject, capsys) -> None:
    from newsletter.deliver.lock import SendLock

    with SendLock(delivery_project.root / "newsletter.db.lock") as held:
        assert held.acquire()
        assert delivery_project.cli("send", "--now", NOW) == 0
    assert "another send is running" in capsys.readouterr().out
    assert not (delivery_project.root / "outbox").exists()


def test_smtp_without_a_secret_is_refused_with_exit_2(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, monkeypatch,
        capsys) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET")
    assert delivery_project.cli("send", "--now", NOW) == 2
    assert "NEWSLETTER_SECRET is not set" in capsys.readouterr().err


def test_send_shard_is_gone_and_says_where_several_senders_went(
        delivery_project: DeliveryProject, capsys) -> None:
    # An old crontab's `send --shard 2/3` must not send to the whole list from every host.
    assert delivery_project.cli("send", "--now", NOW, "--shard", "2/3") == 2
    err = capsys.readouterr().err
    assert "--shard is gone" in err and "docs/scaling.md" in err


@pytest.mark.parametrize(("stage", "reply", "state"), [
    ("rcpt", "450 4.2.1 mailbox temporarily unavailable", "deferred"),
    ("rcpt", "552 5.2.2 mailbox full", "failed"),
    ("data", "450 4.7.1 try again later", "deferred"),
])
def test_each_reply_code_sets_the_state_it_means(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        stage: str, reply: str, state: str) -> None:
    target = delivery_project.addresses[2]
    getattr(smtp_script, stage)[target] = [reply]
    assert delivery_project.cli("send", "--now", NOW) == 0
    states = delivery_project.states()
    record(f"{reply[:3]} at {'RCPT' if stage == 'rcpt' else 'end of data'}", state,
           states[target], str(smtp_script.copies()[target]))
    assert states[target] == state
    assert all(states[a] == "sent" for a in delivery_project.addresses if a != target)


def test_connection_dropped_before_data_is_retried_on_a_new_connection(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    target = delivery_project.addresses[1]
    smtp_script.rcpt[target] = [BEFORE_DATA]
    assert delivery_project.cli("send", "--now", NOW) == 0
    record("connection closed after RCPT, before DATA", "retried, sent once",
           delivery_project.states()[target], str(smtp_script.copies()[target]))
    assert smtp_script.copies() == {a: 1 for a in delivery_project.addresses}
