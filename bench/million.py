"""A list of 1,000,000 subscribers, once (issue 17): `subscribers import` (time, peak memory),
the freeze (time, peak memory), and the first minute of `send` into a loopback sink: msg/s,
the time to the first message (from the start of `newsletter send` to the first message at
the sink), each sender process's peak RSS and CPU per message, and the WAL file's largest
size. Smaller lists are measured the same way first, so the figures show what grows.

    python bench/million.py [--sizes 10000,100000,1000000] [--minute 60]

Writes a markdown table to bench/results/<stamp>-million.md (a few minutes at 1,000,000).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import SinkProcess, run  # noqa: E402
from project import make_project  # noqa: E402
from run import NOW, RESULTS  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MARGIN = 5.0  # seconds past the freeze's line the send runs for, beyond the minute


@dataclass
class Watched:
    """What one `send` run showed: its processes' peaks and CPU, the WAL's size, its lines."""

    hwm_mb: dict[int, float] = field(default_factory=dict)  # pid -> VmHWM
    cpu_s: dict[int, float] = field(default_factory=dict)  # pid -> utime + stime
    wal_mb: float = 0.0
    lines: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, text)


def process_figures(pid: int) -> tuple[float, float] | None:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024
    return hwm, (int(fields[11]) + int(fields[12])) / TICK


def watch(proc: subprocess.Popen, wal: Path, seen: Watched) -> None:
    """Sample the send and its sender processes (its children) until it exits."""
    while proc.poll() is None:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for pid in (proc.pid, *map(int, children)):
            if (got := process_figures(pid)) is not None:
                seen.hwm_mb[pid], seen.cpu_s[pid] = got
        if wal.exists():
            seen.wal_mb = max(seen.wal_mb, wal.stat().st_size / 1e6)
        time.sleep(0.2)


def send_minute(root: Path, minute: float) -> dict:
    """`newsletter send` into a sink, stopped (SIGTERM: the run ends politely) a minute
    after the freeze's line, or at its end if it finishes first."""
    stamps = root / "stamps.txt"
    sink = SinkProcess(stamps)
    env = {**os.environ, "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?timeout=30",
           "NEWSLETTER_SECRET": "bench-secret", "NEWSLETTER_TIMINGS": "1"}
    seen = Watched()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "--config",
                             str(root / "newsletter.toml"), "send", "--now", NOW], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watcher = threading.Thread(target=watch, args=(proc, root / "newsletter.db-wal", seen))
    watcher.start()
    frozen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            seen.lines.append((time.monotonic(), line.rstrip()))
            frozen.set() if " frozen, " in line else None
        frozen.set()

    reader = threading.Thread(target=read)
    reader.start()
    frozen.wait()
    try:
        proc.wait(timeout=minute + MARGIN)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    reader.join()
    watcher.join()
    sink.stop()
    return summarise(seen, proc.pid, started,
                     sorted(float(t) for t in stamps.read_text().split()), minute)


def summarise(seen: Watched, parent: int, started: float, stamps: list[float],
              minute: float) -> dict:
    text = "\n".join(line for _, line in seen.lines)
    if not stamps:
        raise SystemExit(f"no message reached the sink:\n{text}")
    first = stamps[0]
    window = [t for t in stamps if t <= first + minute]
    span = max(window[-1] - first, 1e-9)
    senders = sorted(p for p in seen.hwm_mb if p != parent) or [parent]
    freeze = re.search(r"freeze ([\d.]+) s", text)
    return {"first_s": first - started, "rate": len(window) / span, "span": span,
            "sent": len(stamps), "freeze_s": float(freeze[1]) if freeze else float("nan"),
            "parent_mb": seen.hwm_mb[parent],
            "sender_mb": [seen.hwm_mb[p] for p in senders],
            "cpu_us": sum(seen.cpu_s[p] for p in senders) / len(stamps) * 1e6,
            "wal_mb": seen.wal_mb}


def measure(n: int, minute: float, work: Path) -> dict:
    root = make_project(work / f"n{n}", n, 2, 0, False)
    nl = [sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml")]
    import_s, import_kb, _ = run(nl + ["subscribers", "import", "subscribers/sample.csv"], root)
    result = send_minute(root, minute)
    result.update(n=n, import_s=import_s, import_mb=import_kb / 1024,
                  db_mb=(root / "newsletter.db").stat().st_size / 1e6)
    shutil.rmtree(root, ignore_errors=True)
    return result


def render(rows: list[dict], minute: float) -> str:
    lines = [f"# newsletter at 1,000,000 subscribers: import, freeze, the first {minute:.0f} s "
             f"of send ({os.cpu_count()} CPUs, SQLite, DKIM off, 2 connections, "
             "[delivery] processes = auto)", "",
             "| subscribers | import | import peak RSS | freeze | send: parent peak RSS "
             "(plan, freeze) | first message | msg/s (first minute) | sender processes' "
             "peak RSS | sender CPU / message | largest WAL | database |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        each = " / ".join(f"{m:.0f}" for m in r["sender_mb"])
        lines.append(
            f"| {r['n']:,} | {r['import_s']:.1f} s | {r['import_mb']:.0f} MB | "
            f"{r['freeze_s']:.1f} s | {r['parent_mb']:.0f} MB | {r['first_s']:.1f} s | "
            f"{r['rate']:,.0f} ({r['sent']:,} in {r['span']:.0f} s) | {each} MB | "
            f"{r['cpu_us']:.0f} µs | {r['wal_mb']:.0f} MB | {r['db_mb']:.0f} MB |")
    lines += ["", "First message: from the start of `newsletter send` to the first message at "
              "the sink (start-up, plan, freeze, the count of due rows, the editions "
              "prepared, the senders forked and connected). Peak RSS: each process's VmHWM "
              "(/proc), sampled every 0.2 s; CPU per message: the sender processes' user + "
              "system time over the messages the sink took."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--minute", type=float, default=60.0,
                        help="seconds of send measured after the first message (default 60)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="newsletter-million-"))
    try:
        rows = []
        for n in (int(x) for x in args.sizes.split(",")):
            rows.append(measure(n, args.minute, work))
            print(f"{n:,}: {rows[-1]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = render(rows, args.minute)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{datetime.now():%Y%m%d-%H%M%S}-million.md").write_text(report,
                                                                         encoding="utf-8")


if __name__ == "__main__":
    main()
