"""The fault suite: concurrency, a full disk, and policy failures, each run as a real process
against a real SMTP server, recorded in the table `make faults` prints (tests/faults_table.py)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project
from faults_table import record
from smtp_server import Script, ScriptedServer

NOW = "2026-11-22T10:00"
FULL = bool(os.environ.get("FAULTS_FULL"))  # `make faults`: bigger lists, more repetitions
SUBSCRIBERS = 60 if FULL else 12


def sender(project: DeliveryProject, server: ScriptedServer, *extra: str,
           file_limit: int = 0) -> subprocess.Popen:
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s"}
    env.pop("NEWSLETTER_CRASH_AT", None)

    def limit_file_size() -> None:  # RLIMIT_FSIZE: writes past it fail as on a full disk
        if file_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(project.config), "send", "--now",
         NOW, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=limit_file_size)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def copies_summary(project: DeliveryProject, script: Script) -> str:
    counts = [script.copies()[a] for a in project.addresses]
    return f"{counts.count(1)} x1, {counts.count(0)} x0, {sum(c > 1 for c in counts)} x2+"


def integrity_ok(project: DeliveryProject) -> bool:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture
def server() -> ScriptedServer:
    script = Script(delay=0.01)
    srv = ScriptedServer(script)
    srv.start()
    yield srv
    srv.stop()


def test_five_concurrent_sends_deliver_exactly_once(tmp_path: Path, server: ScriptedServer):
    project = make_delivery_project(tmp_path / "nl", SUBSCRIBERS)
    project.cli("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    procs = [sender(project, server) for _ in range(5)]
    results = [finish(p) for p in procs]
    busy = sum("another send is running" in out for _, out, _ in results)
    observed = f"exits {sorted(r[0] for r in results)}, {busy} said another is running"
    record("five sends started at once", "one sends, four exit 0", observed,
           copies_summary(project, server.script))
    assert all(code == 0 for code, _, _ in results)
    assert busy >= 1  # the others either waited on the lock or found nothing left to send
    assert server.script.copies() == {a: 1 for a in project.addresses}


def test_without_the_lock_file_claims_still_prevent_duplicates(
        tmp_path: Path, server: ScriptedServer) -> None:
    project = make_delivery_project(tmp_path / "nl", SUBSCRIBERS)
    project.cli("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    server.script.delay = 0.05
    first = sender(project, server)
    lock = project.root / "newsletter.db.lock"
    deadline = time.monotonic() + 30
    while not server.script.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.unlink()  # an operator "fixing" a stuck lock by hand, while the first send runs
    second = sender(project, server)
    results = [finish(first), finish(second)]
    states = project.states()
    record("lock file deleted during a send", "no duplicates; live rows not taken over",
           f"exits {[r[0] for r in results]}, states {sorted(set(states.values()))}",
           copies_summary(project, server.script))
    assert all(n <= 1 for n in server.script.copies().values())
    assert set(states.values()) == {"sent"}  # the second sender left the first one's rows alone
    assert server.script.copies() == {a: 1 for a in project.addresses}


@pytest.mark.sqlite_only  # the file size limit of the SQLite file and its WAL
@pytest.mark.parametrize("batch", [1, 5])
def test_a_full_disk_stops_the_send_before_an_unrecorded_message(
        tmp_path: Path, server: ScriptedServer, batch: int) -> None:
    # Enough rows for a WAL that outgrows the room (a commit a batch: more rows for batches);
    # 2 connections, `batch` rows a claim
    project = make_delivery_project(tmp_path / "nl", 40 if batch == 1 else 150,
                                    batch_size=batch)
    project.cli("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    project.cli("send", "--dry-run", "--now", NOW)  # make the database and its WAL exist
    # The migrations leave a large WAL and free pages the send would reuse; compact both, so
    # that 16 KB of room is less than the freeze and the send write, whatever the schema's
    # history (the disk then fills during the freeze or the first messages).
    conn = sqlite3.connect(project.db)
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    limit = max(p.stat().st_size for p in project.root.glob("newsletter.db*")) + 16 * 1024
    code, out, err = finish(sender(project, server, file_limit=limit))
    sent_before = sum(server.script.copies().values())
    states = project.states()
    record(f"disk full during a send (batches of {batch})",
           "stops, exit 1, nothing sent unclaimed",
           f"exit {code}, {sent_before} delivered, ledger {_count(states)}",
           copies_summary(project, server.script))
    assert code == 1 and "database" in err and "Traceback" not in err
    assert sum(s in ("sent", "sending") for s in states.values()) >= sent_before
    code, out, err = finish(sender(project, server))  # space again: the rerun completes
    states = project.states()
    assert integrity_ok(project)
    assert all(server.script.copies()[a] == 1 for a, s in states.items() if s != "unknown")
    assert sum(s == "unknown" for s in states.values()) <= 2 * batch  # a batch a connection
    assert "sending" not in states.values()


@pytest.mark.sqlite_only  # an immutable SQLite file (chattr +i)
def test_read_only_database_stops_before_sending(tmp_path: Path, server: ScriptedServer):
    project = make_delivery_project(tmp_path / "nl", SUBSCRIBERS)
    project.cli("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    project.cli("send", "--dry-run", "--now", NOW)
    frozen = [project.db, project.root]  # immutable: not even root may write (chattr +i)
    if subprocess.run(["chattr", "+i", *map(str, frozen)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        code, out, err = finish(sender(project, server))
    finally:
        subprocess.run(["chattr", "-i", *map(str, frozen)], check=True)
    record("read-only database", "exit 1 with a message, nothing sent", f"exit {code}",
           copies_summary(project, server.script))
    assert code == 1 and "Traceback" not in err and "database" in err
    assert server.script.messages == []


def _count(states: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for s in states.values():
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def test_sigterm_stops_politely_and_a_rerun_completes(tmp_path: Path,
                                                     server: ScriptedServer) -> None:
    project = make_delivery_project(tmp_path / "nl", SUBSCRIBERS)
    server.script.delay = 0.05
    proc = sender(project, server)
    deadline = time.monotonic() + 30
    while len(server.script.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stopped = project.states()
    code, _, _ = finish(sender(project, server))
    states = project.states()
    record("SIGTERM mid-send, then a rerun", "stops cleanly (no `unknown`); rerun completes",
           f"first: {_count(stopped)}; after rerun: {_count(states)}",
           copies_summary(project, server.script))
    assert proc.returncode == 1 and "stopped by SIGTERM" in err
    assert "sending" not in stopped.values() and "unknown" not in stopped.values()
    assert code == 0 and set(states.values()) == {"sent"}
    assert server.script.copies() == {a: 1 for a in project.addresses}
