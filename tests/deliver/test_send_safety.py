"""The send's safety rails: the transport named in newsletter.toml (a cron job that lost
NEWSLETTER_SMTP_URL stops instead of "sending" into the Maildir), the ledger's record of
where each row went, issues off schedule held unless acknowledged, and the question at a
terminal (a real pseudo-terminal) with the readers per edition. Real SQLite, a real aiosmtpd
server on 127.0.0.1, a real Maildir."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest_delivery import REPO, DeliveryProject, make_delivery_project
from pg_engine import on_postgresql
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer

from newsletter.compose.drafts import load_draft
from newsletter.deliver.schedule_rule import off_schedule

NOW = "2026-11-22T10:00"  # in the sample issue's month (send_at 2026-11-05 09:00)
LATE = "2026-12-10T10:00"  # 35 days after send_at, November over: off schedule


def set_transport(project: DeliveryProject, transport: str) -> None:
    text = project.config.read_text(encoding="utf-8")
    text = text.replace("[delivery]\n", f"[delivery]\ntransport = {transport}\n")
    project.config.write_text(text, encoding="utf-8")


def ledger_rows(project: DeliveryProject) -> list[tuple[str, str, str]]:
    if not on_postgresql() and not project.db.exists():
        return []  # nothing written yet (on PostgreSQL the test's database is always there)
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT issue, state, transport FROM deliveries "
                            "ORDER BY issue").fetchall()


def outbox_count(project: DeliveryProject) -> int:
    new = project.root / "outbox" / "new"
    return len(list(new.iterdir())) if new.exists() else 0


def set_send_at(project: DeliveryProject, value: str, issue: str = "2026-11") -> None:
    path = project.root / "issues" / f"{issue}.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^send_at: .*$", f"send_at: {value}", text), encoding="utf-8")


# --- the transport -------------------------------------------------------------------------


def test_smtp_transport_without_the_url_exits_2_before_claiming_anything(
        delivery_project: DeliveryProject, capsys) -> None:
    set_transport(delivery_project, '"smtp"')
    assert delivery_project.cli("send", "--now", NOW) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NEWSLETTER_SMTP_URL is not set" in err[0], err
    assert str(delivery_project.config) in err[0]
    assert ledger_rows(delivery_project) == [] and outbox_count(delivery_project) == 0


def test_maildir_transport_with_the_url_set_exits_2_and_mails_nobody(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    set_transport(delivery_project, '"maildir"')
    assert delivery_project.cli("send", "--now", NOW) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'transport = "maildir" but NEWSLETTER_SMTP_URL is set' in err[0]
    assert smtp_script.messages == [] and outbox_count(delivery_project) == 0
    assert ledger_rows(delivery_project) == []


def test_an_unknown_transport_is_one_config_line(delivery_project: DeliveryProject,
                                                 capsys) -> None:
    set_transport(delivery_project, '"pigeon"')
    assert delivery_project.cli("send", "--now", NOW) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "'delivery.transport' must be \"maildir\" or \"smtp\", not 'pigeon'" in line


def test_the_sample_names_the_maildir() -> None:
    text = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    assert re.search(r'(?m)^\[delivery\]\n(#.*\n)*transport = "maildir"$', text)


def test_smtp_rows_record_the_relay_without_the_login_and_status_shows_it(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys, monkeypatch) -> None:
    set_transport(delivery_project, '"smtp"')
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert len(smtp_script.messages) == len(delivery_project.addresses)
    port = smtp_server.url.rsplit(":", 1)[1].split("?")[0]
    label = f"smtp://127.0.0.1:{port}"
    assert {r[2] for r in ledger_rows(delivery_project)} == {label}
    capsys.readouterr()
    assert delivery_project.cli("status", "2026-11") == 0
    out = capsys.readouterr().out
    # --now 10:00 Zurich; the run takes well under a minute
    assert f"  via {label}: sent 6 (en 6), 2026-11-22 10:0" in out, out
    assert "CET" in out.split(label)[1].splitlines()[0]


def test_maildir_rows_say_maildir_and_a_later_smtp_run_is_told_apart(
        delivery_project: DeliveryProject, capsys, monkeypatch) -> None:
    """A deferred row retried through another transport records the one that delivered it."""
    assert delivery_project.cli("send", "--now", NOW) == 0  # no key, no URL: the Maildir
    assert "names no [delivery] transport: writing the Maildir" in capsys.readouterr().err
    assert outbox_count(delivery_project) == 6
    assert {r[2] for r in ledger_rows(delivery_project)} == {"maildir:outbox"}
    with sqlite3.connect(delivery_project.db) as conn:  # two rows back to due, as after a 451
        conn.execute("UPDATE deliveries SET state = 'deferred', next_attempt_at = "
                     "'2026-11-22T00:00:00+00:00' WHERE subscriber_id IN (SELECT id FROM "
                     "subscribers ORDER BY id LIMIT 2)")
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert delivery_project.cli("send", "--now", "2026-11-22T11:00") == 0
        relay = server.url.split("?")[0]
    assert len(script.messages) == 2
    capsys.readouterr()
    assert delivery_project.cli("status") == 0
    out = capsys.readouterr().out
    assert "  via maildir:outbox: sent 4 (en 4), 2026-11-22 10:0" in out, out
    assert f"  via {relay}: sent 2 (en 2), 2026-11-22 11:0" in out, out


# --- off schedule ----------------------------------------------------------------------------


def test_cron_holds_an_issue_whose_month_is_over_with_one_line_and_sends_nothing(
        delivery_project: DeliveryProject, capsys) -> None:
    assert delivery_project.cli("send", "--now", LATE) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "off schedule" in line]
    assert len(err) == 1, err
    assert "2026-11: not sent: off schedule: send_at 2026-11-05 09:00 CET was 35 day(s) ago" \
        in err[0] and "`newsletter send 2026-11 --now`" in err[0]
    assert ledger_rows(delivery_project) == [] and outbox_count(delivery_project) == 0


@pytest.mark.parametrize(("send_at", "now"), [
    ("2026-11-05T09:00", "2026-11-30T23:00"),  # 25 days late, still its month
    ("2026-11-28T09:00", "2026-12-04T09:00"),  # month over, 6 days late (cron was down)
    ("2026-10-20T09:00", "2026-10-20T09:30"),  # 12 days before its month: sent early
])
def test_a_late_or_early_issue_within_the_grace_goes_out_unasked(
        delivery_project: DeliveryProject, send_at: str, now: str) -> None:
    set_send_at(delivery_project, send_at)
    assert delivery_project.cli("send", "--now", now) == 0
    assert outbox_count(delivery_project) == 6


@pytest.mark.parametrize(("send_at", "now"), [
    ("2026-11-22T09:00", "2026-12-01T10:00"),  # 9 days late and November is over
    ("2026-09-15T09:00", "2026-09-15T10:00"),  # on time, but 47 days before its month
])
def test_past_the_grace_cron_holds_the_issue(delivery_project: DeliveryProject, send_at: str,
                                            now: str, capsys) -> None:
    set_send_at(delivery_project, send_at)
    assert delivery_project.cli("send", "--now", now) == 1
    assert "2026-11: not sent: off schedule" in capsys.readouterr().err
    assert ledger_rows(delivery_project) == []


def test_cron_still_sends_a_due_issue_beside_a_held_one(delivery_project: DeliveryProject,
                                                        capsys) -> None:
    issues = delivery_project.root / "issues"
    text = (issues / "2026-11.md").read_text(encoding="utf-8")
    (issues / "2026-12.md").write_text(text.replace("send_at: 2026-11-05T09:00",
                                                    "send_at: 2026-12-01T09:00"),
                                       encoding="utf-8")
    shutil.copy(issues / "2026-11.items.yaml", issues / "2026-12.items.yaml")
    assert delivery_project.cli("send", "--now", LATE) == 1  # the held one is a problem
    assert {(i, s) for i, s, _ in ledger_rows(delivery_project)} == {("2026-12", "sent")}
    assert "2026-11: not sent: off schedule" in capsys.readouterr().err


def test_yes_sends_an_issue_off_schedule(delivery_project: DeliveryProject) -> None:
    assert delivery_project.cli("send", "2026-11", "--now", LATE, "--yes") == 0
    assert outbox_count(delivery_project) == 6


def test_a_bare_now_sends_an_issue_off_schedule(delivery_project: DeliveryProject) -> None:
    # On the real clock (after November 2026) the sample is off schedule: held without --now
    assert delivery_project.cli("send", "2026-11") == 1
    assert ledger_rows(delivery_project) == []
    assert delivery_project.cli("send", "2026-11", "--now") == 0  # bare --now: now, on purpose
    assert {s for _, s, _ in ledger_rows(delivery_project)} == {"sent"}


@pytest.mark.parametrize("issue", ["2026-11", "issues/2026-11.md"])
def test_send_now_before_the_issue_reads_the_issue_not_a_clock(tmp_path: Path, capsys,
                                                               monkeypatch, issue: str) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    project = make_delivery_project(tmp_path / "nl", 2)
    monkeypatch.chdir(project.root)
    assert project.cli("send", "--now", issue) == 0  # off schedule on the real clock
    assert {s for _, s, _ in ledger_rows(project)} == {"sent"}


def test_a_send_at_far_from_its_month_is_held_when_named_and_warned_by_check(
        delivery_project: DeliveryProject, capsys) -> None:
    set_send_at(delivery_project, "2025-11-05T09:00")  # the wrong year
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert "warning: off schedule: send_at 2025-11-05 09:00 CET is more than 45 days from " \
        "its month November 2026" in out, out
    path = delivery_project.root / "issues" / "2026-11.md"
    assert re.search(rf"{re.escape(str(path))}:\d+: warning: off schedule", out), out
    set_send_at(delivery_project, "2027-11-05T09:00")  # a year ahead: named, it would go now
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    assert "is more than 45 days from its month November 2026" in capsys.readouterr().out
    assert delivery_project.cli("send", "2026-11", "--now", NOW) == 1
    assert "2026-11: not sent: off schedule: send_at 2027-11-05 09:00 CET is more than 45 " \
        "days" in capsys.readouterr().err
    assert ledger_rows(delivery_project) == []


def test_check_says_nothing_about_the_schedule_of_an_issue_already_sent(
        delivery_project: DeliveryProject, capsys) -> None:
    assert delivery_project.cli("check", "2026-11", "--now", LATE) == 0
    assert "off schedule" in capsys.readouterr().out
    assert delivery_project.cli("send", "--now", NOW) == 0
    capsys.readouterr()
    assert delivery_project.cli("check", "2026-11", "--now", LATE) == 0
    assert "off schedule" not in capsys.readouterr().out


def test_a_cron_run_without_a_terminal_never_waits_for_an_answer(
        delivery_project: DeliveryProject) -> None:
    """stdin open but silent (no tty): send must not read it."""
    reader, writer = os.pipe()
    try:
        done = subprocess.run(_cli(delivery_project, "send", "--now", NOW), stdin=reader,
                              capture_output=True, text=True, timeout=120, env=_env())
    finally:
        os.close(reader)
        os.close(writer)
    assert done.returncode == 0, done.stderr
    assert "[y/N]" not in done.stdout and outbox_count(delivery_project) == 6


# --- the question at a terminal ----------------------------------------------------------------


def _cli(project: DeliveryProject, *args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter", "--config", str(project.config), *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_SMTP_URL"}
    return {**env, "NEWSLETTER_SECRET": "test-secret", "COLUMNS": "200"}


def run_at_terminal(project: DeliveryProject, answer: str, *args: str) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal (stdin, stdout and stderr), answer the question once
    it is asked, and return (exit code, everything shown)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(_cli(project, *args), stdin=slave, stdout=slave, stderr=slave,
                            env=_env(), cwd=project.root, close_fds=True)
    os.close(slave)
    shown, answered, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, shown.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.fixture
def bilingual(tmp_path: Path, monkeypatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    project = make_delivery_project(tmp_path / "nl", 0)
    for name in ("2026-11.fr.md", "2026-11.fr.items.yaml"):
        shutil.copy(SAMPLE_ISSUES / name, project.root / "issues" / name)
    rows = ["email,name,language,tags", "a@example.com,A,en,", "b@example.com,B,en,",
            "c@example.com,C,fr,", "d@example.com,D,fr-CA,", "e@example.com,E,de,"]
    (project.root / "subscribers" / "sample.csv").write_text("\n".join(rows) + "\n",
                                                             encoding="utf-8")
    return project


def test_at_a_terminal_no_sends_nothing_after_showing_readers_per_edition(
        bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "n", "send", "2026-11", "--now", NOW)
    assert "2026-11 (starts now): 5 reader(s): en 3, fr 2" in shown, shown  # de gets en
    assert "through maildir:outbox" in shown
    assert "send to 5 reader(s)? [y/N]" in shown
    assert "not sent: nothing claimed" in shown
    assert code == 1
    assert ledger_rows(bilingual) == [] and outbox_count(bilingual) == 0


def test_at_a_terminal_yes_sends(bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "y", "send", "2026-11", "--now", NOW)
    assert code == 0, shown
    assert "sent 5, deferred 0, failed 0" in shown
    assert outbox_count(bilingual) == 5
    with sqlite3.connect(bilingual.db) as conn:
        assert dict(conn.execute("SELECT language, count(*) FROM deliveries GROUP BY "
                                 "language")) == {"en": 3, "fr": 2}


def test_at_a_terminal_an_issue_off_schedule_is_named_and_yes_sends_it(
        bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "y", "send", "2026-11", "--now", LATE)
    assert "  off schedule: send_at 2026-11-05 09:00 CET was 35 day(s) ago" in shown, shown
    assert "send to 5 reader(s), 1 issue(s) off schedule? [y/N]" in shown
    assert code == 0, shown
    assert outbox_count(bilingual) == 5


def test_a_plain_send_at_a_terminal_never_asks_and_holds_an_issue_off_schedule(
        bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "y", "send", "--now", LATE)
    assert "[y/N]" not in shown, shown
    assert "2026-11: not sent: off schedule" in shown and code == 1, shown
    assert outbox_count(bilingual) == 0


def test_a_plain_send_at_a_terminal_sends_a_due_issue_without_a_question(
        bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "n", "send", "--now", NOW)
    assert "[y/N]" not in shown and code == 0, shown
    assert outbox_count(bilingual) == 5


def test_the_shipped_sample_is_never_off_schedule() -> None:
    draft = load_draft(REPO / "issues" / "2026-11.md", timezone=ZoneInfo("Europe/Zurich"),
                       default_language="en")
    assert draft.send_at is None
    far = datetime(2031, 6, 1, tzinfo=UTC)
    assert off_schedule(draft, far, ZoneInfo("Europe/Zurich")) == ""


def test_yes_skips_the_question_at_a_terminal(bilingual: DeliveryProject) -> None:
    code, shown = run_at_terminal(bilingual, "n", "send", "2026-11", "--now", NOW, "--yes")
    assert "[y/N]" not in shown and code == 0, shown
    assert outbox_count(bilingual) == 5
