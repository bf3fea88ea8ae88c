"""Whether a claim's owner still runs: the judgement recovery makes before it marks a crashed
sender's rows `unknown`. Real processes; the owner strings are built as ledger.OWNER is."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from newsletter.deliver import ledger


def owner_of(pid: int) -> str:
    return f"{ledger.HOST}:{ledger._identity(pid)}"


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_running_process_owns_its_rows() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert ledger._owner_alive(owner_of(proc.pid))
    finally:
        proc.kill()
        proc.wait()


def test_an_exited_process_not_yet_reaped_owns_nothing() -> None:
    # A killed sender's child lingers as a zombie until init collects it (a slow init left
    # its rows `sending` after the rerun); it holds no lock and sends nothing.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = owner_of(proc.pid)
    proc.kill()
    deadline = time.monotonic() + 10
    while state(proc.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert state(proc.pid) == "Z"  # not reaped: kill(pid, 0) still succeeds
        assert not ledger._owner_alive(owner)
    finally:
        proc.wait()


def test_a_reaped_process_and_a_reused_pid_own_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = owner_of(proc.pid)
    proc.wait()
    assert not ledger._owner_alive(owner)
    pid = owner.split(":")[1]
    # The same PID with another start time (as after PID reuse) is someone else.
    assert not ledger._owner_alive(f"{ledger.HOST}:{pid}:other-boot:1")
