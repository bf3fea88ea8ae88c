"""The bench's child processes: the sink (bench/sink.py, its CPU use read from /proc) and
commands whose peak memory is kept (wait4's ru_maxrss)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SinkProcess:
    def __init__(self, stamps: Path | None = None, *, pipelining: bool = True) -> None:
        self.port = free_port()
        argv = [sys.executable, str(REPO / "bench" / "sink.py"), str(self.port)]
        if stamps:
            argv.append(str(stamps))
        if not pipelining:
            argv.append("--no-pipelining")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.started = time.monotonic()
        self.cpu_at_start = self.cpu_seconds()
        self.cores = 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        """Stops the sink; returns the messages it took, and keeps in `cores` how many cores
        it used on average (CPU seconds / wall seconds) while it ran."""
        try:
            used = self.cpu_seconds() - self.cpu_at_start
            self.cores = used / max(time.monotonic() - self.started, 1e-9)
        except OSError:
            self.cores = 0.0
        self.proc.terminate()
        out = self.proc.communicate(timeout=30)[0]
        return int(re.search(r"messages (\d+)", out)[1])


def run(argv: list[str], cwd: Path, env: dict | None = None,
        config_text: str | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS in KB, stdout) of a child process."""
    if config_text is not None and not (cwd / "newsletter.toml").exists():
        (cwd / "newsletter.toml").write_text(config_text, encoding="utf-8")
    started = time.monotonic()
    proc = Measured(argv, cwd=cwd, env={**os.environ, **(env or {})},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}\n{err}")
    return seconds, proc.peak_rss_kb, out


class Measured(subprocess.Popen):
    """Popen that reaps its child with wait4, keeping the child's own peak RSS (ru_maxrss)."""

    peak_rss_kb = 0

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid:
            self.peak_rss_kb = usage.ru_maxrss
        return pid, status
