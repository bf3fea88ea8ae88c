"""`make bench`: end-to-end send throughput against a loopback SMTP sink, beside the smtplib
ceiling measured in the same run. Prints a table and writes it to bench/results/.

    python bench/run.py [--n 10000] [--connections 2] [--rate 0] [--no-dkim]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
NOW = "2026-11-22T10:00"


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

    def stop(self) -> int:
        self.proc.terminate()
        out = self.proc.communicate(timeout=30)[0]
        return int(re.search(r"messages (\d+)", out)[1])


def make_project(root: Path, n: int, connections: int, rate: float, dkim: bool) -> Path:
    """The sample newsletter with n generated subscribers."""
    root.mkdir(parents=True)
    for folder in ("templates", "feeds"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "issues").mkdir()
    for name in ("2026-11.md", "2026-11.items.yaml"):
        shutil.copy(REPO / "issues" / name, root / "issues" / name)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    config = re.sub(r"connections = \d+", f"connections = {connections}", config)
    config = re.sub(r"rate_per_second = [\d.]+", f"rate_per_second = {rate}", config)
    if dkim:
        run([sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
             "dkim", "keygen", "--selector", "bench", "--domain", "ipbusiness.example.org",
             "--out", str(root / "dkim")], root, config_text=config)
        config += ('\n[dkim]\nselector = "bench"\ndomain = "ipbusiness.example.org"\n'
                   'key_file = "dkim/bench.private"\n')
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    (root / "subscribers").mkdir()
    with open(root / "subscribers" / "sample.csv", "w", encoding="utf-8") as out:
        out.write("email,name,language,tags\n")
        for i in range(n):
            out.write(f"reader{i:06d}@example.com,Reader Number {i},en,bench\n")
    return root


def run(argv: list[str], cwd: Path, env: dict | None = None,
        config_text: str | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS in KB, stdout) of a child process."""
    if config_text is not None and not (cwd / "newsletter.toml").exists():
        (cwd / "newsletter.toml").write_text(config_text, encoding="utf-8")
    started = time.monotonic()
    proc = _Measured(argv, cwd=cwd, env={**os.environ, **(env or {})},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{out}\n{err}")
    return seconds, proc.peak_rss_kb, out


class _Measured(subprocess.Popen):
    """Popen that reaps its child with wait4, keeping the child's own peak RSS (ru_maxrss)."""

    peak_rss_kb = 0

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid:
            self.peak_rss_kb = usage.ru_maxrss
        return pid, status


def ceiling(port: int, message: bytes, count: int, connections: int) -> float:
    """smtplib sending a pre-built message over reused connections: the best Python can do."""
    per = [count // connections + (1 if i < count % connections else 0)
           for i in range(connections)]
    barrier = threading.Barrier(connections + 1)

    def worker(n: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        smtp.ehlo()
        barrier.wait()
        for i in range(n):
            smtp.sendmail("news@ipbusiness.example.org", [f"r{i}@example.com"], message)
        smtp.quit()

    threads = [threading.Thread(target=worker, args=(n,)) for n in per]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    return count / (time.monotonic() - started)


def send_run(n: int, connections: int, rate: float, dkim: bool, work: Path,
             stamps: Path | None = None, *, pipelining: bool = True) -> dict:
    name = f"send-{'dkim' if dkim else 'plain'}-{rate:g}-{'pipe' if pipelining else 'nopipe'}"
    root = make_project(work / name, n, connections, rate, dkim)
    nl = [sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml")]
    import_s, _, _ = run(nl + ["subscribers", "import", "subscribers/sample.csv"], root)
    sink = SinkProcess(stamps, pipelining=pipelining)
    try:
        env = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?timeout=30",
               "NEWSLETTER_SECRET": "bench-secret", "NEWSLETTER_TIMINGS": "1"}
        seconds, rss_kb, out = run(nl + ["send", "--now", NOW], root, env)
    finally:
        received = sink.stop()
    stages = dict(re.findall(r"(\w+) ([\d.]+) s", out.split("timings:", 1)[1].split("\n")[0]))
    sent = int(re.search(r"sent (\d+)", out.splitlines()[-1])[1])
    deliver = float(stages["deliver"])
    return {"name": name, "n": n, "dkim": dkim, "pipelining": pipelining, "sent": sent,
            "received": received, "seconds": seconds,
            "import_s": import_s, "freeze_s": float(stages["freeze"]), "deliver_s": deliver,
            "rate": sent / deliver, "rss_mb": rss_kb / 1024, "root": str(root)}


def sharded_run(n: int, processes: int, work: Path) -> dict:
    """The alternative to threads: `processes` senders (send --shard K/N, one connection each,
    own database) at once into one sink. Rate = messages / the slowest sender's deliver time."""
    roots = [make_project(work / f"shard-{k}", n, 1, 0, False) for k in range(1, processes + 1)]
    for root in roots:
        run([sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
             "subscribers", "import", "subscribers/sample.csv"], root)
    sink = SinkProcess()
    env = {**os.environ, "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?timeout=30",
           "NEWSLETTER_SECRET": "bench-secret", "NEWSLETTER_TIMINGS": "1"}
    try:
        procs = [subprocess.Popen(
            [sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
             "send", "--now", NOW, "--shard", f"{k}/{processes}"], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k, root in enumerate(roots, 1)]
        outs = [p.communicate()[0] for p in procs]
    finally:
        received = sink.stop()
    deliver = max(float(re.search(r"deliver ([\d.]+) s", o)[1]) for o in outs)
    sent = sum(int(re.search(r"sent (\d+)", o.splitlines()[-1])[1]) for o in outs)
    return {"name": f"send-{processes}-processes", "n": n, "dkim": False, "pipelining": True,
            "processes": processes, "sent": sent, "received": received, "seconds": deliver,
            "import_s": 0.0, "freeze_s": 0.0, "deliver_s": deliver, "rate": sent / deliver,
            "rss_mb": 0.0, "root": str(work)}


def sample_message(work: Path) -> bytes:
    root = make_project(work / "sample", 1, 1, 0, False)
    subprocess.run([sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
                    "build", "2026-11", "--no-screenshots", "--out", str(root / "out")],
                   check=True, capture_output=True)
    return (root / "out" / "sample.eml").read_bytes()


def window_max(stamps: list[float]) -> int:
    """The most messages that arrived in any one-second window."""
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0,
                        help="rate limit to check (messages/s; 0 skips the check)")
    parser.add_argument("--no-dkim", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    rows = []
    message = sample_message(work)
    sink = SinkProcess()
    try:
        top = ceiling(sink.port, message, min(args.n, 20_000), args.connections)
    finally:
        sink.stop()
    print(f"ceiling: smtplib, {args.connections} connection(s), {len(message) / 1024:.1f} KB "
          f"messages: {top:,.0f} msg/s", flush=True)
    rows.append(send_run(args.n, args.connections, 0, False, work, pipelining=False))
    print(f"send, DKIM off, no PIPELINING: {rows[-1]['rate']:,.0f} msg/s", flush=True)
    rows.append(send_run(args.n, args.connections, 0, False, work))
    print(f"send, DKIM off: {rows[-1]['rate']:,.0f} msg/s", flush=True)
    rows.append(sharded_run(args.n, args.connections, work))
    print(f"send as {args.connections} processes (--shard): {rows[-1]['rate']:,.0f} msg/s",
          flush=True)
    if not args.no_dkim:
        rows.append(send_run(args.n, args.connections, 0, True, work))
        print(f"send, DKIM on: {rows[-1]['rate']:,.0f} msg/s", flush=True)
    rate_row = None
    if args.rate:
        stamps_file = work / "stamps.txt"
        rate_row = send_run(int(args.rate * 6), args.connections, args.rate, False, work,
                            stamps_file)
        stamps = sorted(float(x) for x in stamps_file.read_text().split())
        rate_row["window_max"] = window_max(stamps)
    report = render_report(args, top, len(message), rows, rate_row)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}-n{args.n}.md").write_text(report, encoding="utf-8")
    (RESULTS / f"{stamp}-n{args.n}.json").write_text(json.dumps(
        {"ceiling": top, "message_bytes": len(message), "runs": rows, "rate": rate_row},
        indent=2), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


def render_report(args: argparse.Namespace, top: float, size: int, rows: list[dict],
                  rate_row: dict | None) -> str:
    lines = [
        f"# newsletter bench: N={args.n:,}, {args.connections} connection(s), "
        f"{size / 1024:.1f} KB messages, {os.cpu_count()} CPU(s)",
        "",
        "| run | msg/s | ratio to ceiling | peak RSS | import | freeze | deliver |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ceiling: smtplib (no PIPELINING), pre-built messages | {top:,.0f} | 1.00 | | | | |",
    ]
    for r in rows:
        label = "DKIM on (RSA-2048)" if r["dkim"] else "DKIM off"
        label += "" if r["pipelining"] else ", relay without PIPELINING"
        if r.get("processes"):
            label = (f"DKIM off, {r['processes']} processes (send --shard K/{r['processes']}, "
                     "1 connection each) instead of threads")
        rss = f"{r['rss_mb']:.0f} MB" if r["rss_mb"] else "(per process)"
        lines.append(f"| newsletter send, {label} | {r['rate']:,.0f} | {r['rate'] / top:.2f} | "
                     f"{rss} | {r['import_s']:.1f} s | {r['freeze_s']:.1f} s | "
                     f"{r['deliver_s']:.1f} s |")
    if rate_row:
        limit = args.rate
        lines += ["", f"Rate limit {limit:g}/s: at most {rate_row['window_max']} messages in "
                      f"any 1 s window ({(rate_row['window_max'] / limit - 1) * 100:+.0f} %), "
                      f"{rate_row['sent']} sent in {rate_row['deliver_s']:.1f} s."]
    for r in rows:
        if r["received"] != r["sent"]:
            lines.append(f"WARNING: {r['name']}: the sink received {r['received']}, "
                         f"the ledger says {r['sent']} sent")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
