"""A sender killed with SIGKILL at any point, then run again: one copy each, none left `sending`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project
from faults_table import record
from pg_engine import on_postgresql
from smtp_server import Script, ScriptedServer

NOW = "2026-11-22T10:00"


def run_send(project: DeliveryProject, server: ScriptedServer, *extra: str,
             crash_at: str = "", wait: bool = True):  # noqa: ANN201
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s3cret"}
    env.pop("NEWSLETTER_CRASH_AT", None)
    if crash_at:
        env["NEWSLETTER_CRASH_AT"] = crash_at
    argv = [sys.executable, "-m", "newsletter", "--config", str(project.config), "send",
            "--now", NOW, *extra]
    if wait:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def assert_recovered(project: DeliveryProject, script: Script, *, max_unknown: int) -> None:
    """Exactly one copy per subscriber except `unknown` rows; no `sending`; database intact."""
    states = project.states()
    copies = script.copies()
    unknown = {a for a, s in states.items() if s == "unknown"}
    assert "sending" not in states.values()
    assert len(unknown) <= max_unknown
    for address in project.addresses:
        if address in unknown:
            assert copies[address] <= 1
        else:
            assert (states[address], copies[address]) == ("sent", 1), address
    if not on_postgresql():  # the file a SIGKILL may have cut; a server keeps its own pages
        with sqlite3.connect(project.db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(("point", "unknown_expected", "copies_of_unknown"), [
    ("after-freeze", 0, 0),
    ("after-claim:3", 1, 0),
    ("mid-data:3", 1, 0),
    ("after-dot:3", 1, 1),
    ("after-reply:3", 1, 1),
    ("summary", 0, 0),
])
def test_sigkill_at_each_stage_then_rerun_sends_each_subscriber_exactly_once(
        tmp_path: Path, point: str, unknown_expected: int, copies_of_unknown: int) -> None:
    # One row a claim: the row in flight is the only one `sending` (batches: below).
    project = make_delivery_project(tmp_path / "nl", 8, connections=1, batch_size=1)
    script = Script()
    with ScriptedServer(script) as server:
        crashed = run_send(project, server, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        again = run_send(project, server)
        assert again.returncode == (1 if unknown_expected else 0), again.stderr
        assert_recovered(project, script, max_unknown=unknown_expected)
        unknown = [a for a, s in project.states().items() if s == "unknown"]
        counts = [script.copies()[a] for a in project.addresses]
        record(f"SIGKILL at {point.split(':')[0]}, then a rerun",
               f"{unknown_expected} unknown, others one copy",
               f"{len(unknown)} unknown, no `sending`, integrity ok",
               f"{counts.count(1)} x1, {counts.count(0)} x0, {sum(c > 1 for c in counts)} x2+")
        assert len(unknown) == unknown_expected
        assert all(script.copies()[a] == copies_of_unknown for a in unknown)
        if unknown:
            assert "marked unknown" in again.stdout
        third = run_send(project, server)
        assert third.returncode == 0 and "nothing to send" in third.stdout


@pytest.mark.parametrize(("point", "unknown_expected", "sent_copies"), [
    ("after-claim:3", 4, 2),  # in the first batch: rows 1-2 went out unrecorded, 3-4 did not
    ("after-reply:3", 4, 3),
    ("after-claim:6", 4, 1),  # in the second: the first batch's outcomes were committed with it
])
def test_sigkill_mid_batch_leaves_at_most_that_batch_unknown(
        tmp_path: Path, point: str, unknown_expected: int, sent_copies: int) -> None:
    """batch_size = 4: a crash leaves the batch in hand `sending`, whichever of its rows had
    gone out; they become `unknown` (never resent on their own), the rows before it stay
    `sent` and the rows after it are sent by the rerun, once each."""
    project = make_delivery_project(tmp_path / "nl", 10, connections=1, batch_size=4)
    script = Script()
    with ScriptedServer(script) as server:
        crashed = run_send(project, server, crash_at=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        again = run_send(project, server)
        assert again.returncode == 1 and "marked unknown" in again.stdout, again.stderr
        assert_recovered(project, script, max_unknown=4)  # at most one batch (one connection)
        states = project.states()
        unknown = [a for a in project.addresses if states[a] == "unknown"]
        record(f"SIGKILL at {point.split(':')[0]} in a batch of 4, then a rerun",
               "<= 4 unknown (one batch), others one copy", f"{len(unknown)} unknown",
               f"{sum(script.copies()[a] for a in unknown)} of them had gone out")
        assert len(unknown) == unknown_expected
        assert sum(script.copies()[a] for a in unknown) == sent_copies
        assert run_send(project, server, "--resend-unknown").returncode == 0
        assert set(project.states().values()) == {"sent"}


KILL_AFTER = [3, 10, 25, 37] if os.environ.get("FAULTS_FULL") else [10]


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("kill_after", KILL_AFTER)
def test_external_sigkill_part_way_through_then_rerun(tmp_path: Path, kill_after: int,
                                                      batch: int) -> None:
    project = make_delivery_project(tmp_path / "nl", 40, connections=2, batch_size=batch)
    script = Script(delay=0.02)
    with ScriptedServer(script) as server:
        proc = run_send(project, server, wait=False)
        deadline = time.monotonic() + 60
        while sum(script.copies().values()) < kill_after and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert 0 < sum(script.copies().values()) < 40
        run_send(project, server)
        unknown = sum(s == "unknown" for s in project.states().values())
        counts = [script.copies()[a] for a in project.addresses]
        record(f"SIGKILL from outside after {kill_after} messages, batches of {batch}, "
               "then a rerun", f"<= {batch} unknown per connection",
               f"{unknown} unknown (2 connections)",
               f"{counts.count(1)} x1, {counts.count(0)} x0, {sum(c > 1 for c in counts)} x2+")
        assert_recovered(project, script, max_unknown=2 * batch)  # one batch per connection


@pytest.mark.parametrize("boot", [
    "this-boot",
    # PostgreSQL takes another boot's rows once their lease ran out (another machine may
    # share the host name; tests/store/test_pg_claims.py), not at the next run as here.
    pytest.param("an-old-boot", marks=pytest.mark.sqlite_only),
])
def test_rows_claimed_by_a_reused_pid_are_recovered(tmp_path: Path, boot: str) -> None:
    """After a crash or a reboot the dead sender's PID may belong to another process now:
    its start time differs, so its `sending` rows are still recovered as `unknown`."""
    import socket

    if boot == "this-boot":
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()

    project = make_delivery_project(tmp_path / "nl", 3, connections=1)
    script = Script()
    with ScriptedServer(script) as server:
        assert run_send(project, server, "--dry-run").returncode == 0
        assert project.cli("subscribers", "import",
                           str(project.root / "subscribers" / "sample.csv")) == 0
        run_send(project, server, crash_at="after-claim:1")
        with sqlite3.connect(project.db) as conn:  # pretend PID 1 (alive) claimed it
            conn.execute("UPDATE deliveries SET claimed_by = ? WHERE state = 'sending'",
                         (f"{socket.gethostname()}:1:{boot}:12345",))
        again = run_send(project, server)
    assert "marked unknown" in again.stdout
    assert "sending" not in project.states().values()
    record("a crashed sender's PID reused by a live process", "rows still recovered",
           ", ".join(sorted(set(project.states().values()))), "")
