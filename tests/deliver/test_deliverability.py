"""send and check say when bulk mail would go out over SMTP without a DKIM signature."""

from __future__ import annotations

from conftest_delivery import make_delivery_project
from smtp_server import Script, ScriptedServer

NOW = "2026-11-22T10:00"


def test_send_over_smtp_without_dkim_warns_how_to_set_it_up(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    project = make_delivery_project(tmp_path / "nl", 2)
    with ScriptedServer(Script()) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert project.cli("send", "--now", NOW) == 0
    assert len(server.script.messages) == 2
    err = capsys.readouterr().err
    assert "no [dkim] section in newsletter.toml" in err and "newsletter dkim keygen" in err


def test_the_maildir_needs_no_signature_and_gets_no_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    project = make_delivery_project(tmp_path / "nl", 2)
    assert project.cli("send", "--now", NOW) == 0
    captured = capsys.readouterr()
    assert "sent 2" in captured.out
    assert "[dkim]" not in captured.err + captured.out


def test_check_warns_about_unsigned_smtp_mail(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", "smtp://127.0.0.1:2525")
    project = make_delivery_project(tmp_path / "nl", 0)
    project.cli("check", "2026-11")
    out = capsys.readouterr().out
    assert "newsletter.toml: warning: no [dkim] section" in out


def test_the_footer_links_each_reader_to_their_own_preferences_page(tmp_path, monkeypatch):
    import email
    import re
    from email import policy

    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    project = make_delivery_project(tmp_path / "nl", 2)
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert project.cli("send", "--now", NOW) == 0
    assert len(script.messages) == 2
    for _rcpt, data in script.messages:
        message = email.message_from_bytes(data, policy=policy.default)
        unsubscribe = re.search(r"<(https://[^>]+/unsubscribe/[^>]+)>",
                                message["List-Unsubscribe"]).group(1)
        preferences = unsubscribe.replace("/unsubscribe/", "/preferences/")
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert f'href="{preferences}"' in html and f"preferences: {preferences}" in text


def test_the_outbox_maildir_holds_local_line_ends_that_parse_back(tmp_path, monkeypatch):
    import email
    from email import policy

    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    project = make_delivery_project(tmp_path / "nl", 2)
    assert project.cli("send", "--now", NOW) == 0
    files = list((project.root / "outbox" / "new").iterdir())
    assert len(files) == 2
    for path in files:
        raw = path.read_bytes()
        assert b"\r" not in raw  # mutt shows CR as ^M
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert not parsed.defects and parsed.get_body(("plain",)).get_content()


def test_a_dry_run_before_the_send_time_says_what_is_waiting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    project = make_delivery_project(tmp_path / "nl", 2)
    assert project.cli("send", "--dry-run", "--now", "2026-11-01T09:00") == 0
    out = capsys.readouterr().out
    assert "dry run: would send nothing now; waiting: 2026-11 at 2026-11-05 09:00" in out
    assert "for nothing" not in out


def test_a_5_7_1_that_blames_the_address_fails_that_reader_and_does_not_stop_the_run(
        tmp_path, monkeypatch):
    from newsletter.deliver.transport import _is_policy

    assert _is_policy(550, "550 5.7.1 Service unavailable; client host [192.0.2.9] blocked "
                           "using zen.spamhaus.org")
    assert _is_policy(550, "550 5.7.26 Unauthenticated email from example.org is not accepted "
                           "due to domain's DMARC policy")
    assert not _is_policy(550, "550 5.7.1 <reader@example.net>: Recipient address rejected: "
                               "User unknown in local recipient table")
    assert not _is_policy(450, "450 4.7.1 Greylisted, try again later")


def test_serve_on_a_busy_port_says_so_and_never_says_serving(tmp_path):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("newsletter")
    project = make_delivery_project(tmp_path / "nl", 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([str(script), "serve", "--dev", "--port", str(port)],
                                cwd=project.root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"newsletter: 127.0.0.1:{port}: cannot listen: Address " \
                                    "already in use"
