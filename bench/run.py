"""`make bench`: end-to-end send throughput against a loopback SMTP sink, as ratios to the wire
(a pipelined sender of pre-built messages, bench/wire.py) measured in the same run, beside
smtplib and a peer (mailmerge). Runs alternate and repeat; the table shows medians. Prints a
table and writes it to bench/results/.

    python bench/run.py [--n 10000] [--connections 2] [--rate 50] [--repeat 3] [--no-dkim]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from peer import mailmerge_run  # noqa: E402
from wire import smtplib_ceiling, wire  # noqa: E402

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
    # The sample writes the Maildir; the bench sends through its sink (send refuses a
    # NEWSLETTER_SMTP_URL when transport = "maildir").
    config = re.sub(r'transport = "maildir"', 'transport = "smtp"', config)
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


def send_run(n: int, connections: int, rate: float, dkim: bool, work: Path,
             stamps: Path | None = None, *, pipelining: bool = True, tag: str = "") -> dict:
    name = f"send-{'dkim' if dkim else 'plain'}-{rate:g}-{'pipe' if pipelining else 'nopipe'}"
    root = make_project(work / f"{name}{tag}", n, connections, rate, dkim)
    nl = [sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml")]
    import_s, _, _ = run(nl + ["subscribers", "import", "subscribers/sample.csv"], root)
    sink = SinkProcess(stamps, pipelining=pipelining)
    try:
        env = {"NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?timeout=30",
               "NEWSLETTER_SECRET": "bench-secret", "NEWSLETTER_TIMINGS": "1"}
        seconds, rss_kb, out = run(nl + ["send", "--now", NOW], root, env)
    finally:
        received = sink.stop()
    sink_cores = sink.cores
    stages = dict(re.findall(r"(\w+) ([\d.]+) s", out.split("timings:", 1)[1].split("\n")[0]))
    sent = int(re.search(r"sent (\d+)", out.splitlines()[-1])[1])
    deliver = float(stages["deliver"])
    return {"name": name, "n": n, "dkim": dkim, "pipelining": pipelining, "sent": sent,
            "received": received, "seconds": seconds,
            "import_s": import_s, "freeze_s": float(stages["freeze"]), "deliver_s": deliver,
            "rate": sent / deliver, "rss_mb": rss_kb / 1024, "root": str(root),
            "sink_cores": sink_cores}


def sharded_run(n: int, processes: int, work: Path, tag: str = "") -> dict:
    """The alternative to threads: `processes` senders (send --shard K/N, one connection each,
    own database) at once into one sink. Rate = messages / the slowest sender's deliver time."""
    roots = [make_project(work / f"shard-{k}{tag}", n, 1, 0, False)
             for k in range(1, processes + 1)]
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
            "rss_mb": 0.0, "root": str(work), "sink_cores": sink.cores}


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


def reference(kind: str, message: bytes, count: int, connections: int, work: Path) -> dict:
    """One run of a reference sender (the wire, smtplib or mailmerge) into a fresh sink."""
    sink = SinkProcess()
    try:
        if kind == "wire":
            rate = wire(sink.port, message, count, connections)
        elif kind == "smtplib":
            rate = smtplib_ceiling(sink.port, message, count, connections)
        else:
            rate = mailmerge_run(sink.port, message, count, work / f"peer-{time.time_ns()}")
    finally:
        received = sink.stop()
    return {"name": kind, "rate": rate, "sent": count if rate else 0, "received": received,
            "sink_cores": sink.cores}


def median_row(runs: list[dict]) -> dict:
    """The run with the median rate (its other figures come with it), and every rate seen."""
    ordered = sorted(runs, key=lambda r: r["rate"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["rates"] = [r["rate"] for r in runs]
    row["rate"] = statistics.median(row["rates"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0,
                        help="rate limit to check (messages/s; 0 skips the check)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternating rounds; the table shows medians (default 3)")
    parser.add_argument("--peer-n", type=int, default=2_000,
                        help="messages for mailmerge (about 100/s; default 2000)")
    parser.add_argument("--no-dkim", action="store_true")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--only", default="",
                        help="comma-separated runs to make (e.g. wire,plain,dkim; default all)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    message = sample_message(work)
    reference_n = min(args.n, 20_000)
    rounds: dict[str, list[dict]] = {}
    for k in range(args.repeat):
        tag = f"-{k}"
        steps = [("wire", partial(reference, "wire", message, reference_n, args.connections,
                                  work)),
                 ("smtplib", partial(reference, "smtplib", message, reference_n,
                                     args.connections, work)),
                 ("plain-nopipe", partial(send_run, args.n, args.connections, 0, False, work,
                                          pipelining=False, tag=tag)),
                 ("plain", partial(send_run, args.n, args.connections, 0, False, work, tag=tag)),
                 ("shard", partial(sharded_run, args.n, args.connections, work, tag=tag))]
        if not args.no_dkim:
            steps.append(("dkim", partial(send_run, args.n, args.connections, 0, True, work,
                                          tag=tag)))
        if not args.no_peer and k == 0:
            steps.append(("mailmerge", partial(reference, "mailmerge", message,
                                               min(args.n, args.peer_n), 1, work)))
        for name, step in steps:
            if only and name not in only:
                continue
            result = step()
            rounds.setdefault(name, []).append(result)
            print(f"round {k + 1}/{args.repeat}: {name}: {result['rate']:,.0f} msg/s",
                  flush=True)
    rows = {name: median_row(runs) for name, runs in rounds.items()}
    rate_row = None
    if args.rate:
        stamps_file = work / "stamps.txt"
        rate_row = send_run(int(args.rate * 6), args.connections, args.rate, False, work,
                            stamps_file)
        stamps = sorted(float(x) for x in stamps_file.read_text().split())
        rate_row["window_max"] = window_max(stamps)
    report = render_report(args, len(message), rows, rate_row)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}-n{args.n}.md").write_text(report, encoding="utf-8")
    (RESULTS / f"{stamp}-n{args.n}.json").write_text(json.dumps(
        {"message_bytes": len(message), "rows": rows, "rate": rate_row}, indent=2),
        encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


LABELS = {
    "wire": "the wire: pipelined raw-socket sender, pre-built messages",
    "smtplib": "smtplib, pre-built messages (one command at a time)",
    "plain-nopipe": "newsletter send, DKIM off, relay without PIPELINING",
    "plain": "newsletter send, DKIM off",
    "shard": "newsletter send, DKIM off, {c} processes (send --shard K/{c}, 1 connection each)",
    "dkim": "newsletter send, DKIM on (RSA-2048)",
    "mailmerge": "peer: mailmerge 2.3.0 (one connection per message)",
}


def render_report(args: argparse.Namespace, size: int, rows: dict[str, dict],
                  rate_row: dict | None) -> str:
    top = rows["wire"]["rate"] if "wire" in rows else float("nan")
    lines = [
        f"# newsletter bench: N={args.n:,}, {args.connections} connection(s), "
        f"{size / 1024:.1f} KB messages, {os.cpu_count()} CPU(s), medians of {args.repeat} "
        "alternating rounds",
        "",
        "| run | msg/s | × the wire | sink cores | peak RSS | import | freeze | deliver |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        label = LABELS[name].format(c=args.connections)
        rss = f"{r['rss_mb']:.0f} MB" if r.get("rss_mb") else ""
        stages = (f"{r['import_s']:.1f} s | {r['freeze_s']:.1f} s | {r['deliver_s']:.1f} s"
                  if "deliver_s" in r and name != "shard" else " | | ")
        lines.append(f"| {label} | {r['rate']:,.0f} | {r['rate'] / top:.2f} | "
                     f"{r['sink_cores']:.2f} | {rss} | {stages} |")
    if "mailmerge" in rows and "plain" in rows and rows["mailmerge"]["rate"]:
        times = rows["plain"]["rate"] / rows["mailmerge"]["rate"]
        lines += ["", f"newsletter send (DKIM off) is {times:.1f}× mailmerge in this run."]
    if rate_row:
        limit = args.rate
        lines += ["", f"Rate limit {limit:g}/s: at most {rate_row['window_max']} messages in "
                      f"any 1 s window ({(rate_row['window_max'] / limit - 1) * 100:+.0f} %), "
                      f"{rate_row['sent']} sent in {rate_row['deliver_s']:.1f} s."]
    for r in rows.values():
        if r["received"] != r["sent"]:
            lines.append(f"WARNING: {r['name']}: the sink received {r['received']}, "
                         f"the sender says {r['sent']} sent")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
