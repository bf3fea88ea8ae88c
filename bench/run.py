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
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from listmonk import LISTMONK, listmonk_lines  # noqa: E402
from peer import mailmerge_run  # noqa: E402
from wire import smtplib_ceiling, wire  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from pg_server import PgUnavailable, throwaway_cluster  # noqa: E402

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


def make_project(root: Path, n: int, connections: int, rate: float, dkim: bool, *,
                 batch: int | None = None, subscribers: bool = True,
                 processes: int | None = None, dkim_kind: str = "rsa") -> Path:
    """The sample newsletter with n generated subscribers (`subscribers=False`: the CSV is
    written but the config names none, for the PostgreSQL senders that share one list);
    batch, processes: [delivery] batch_size and processes (None: the program's default);
    dkim_kind: the key `newsletter dkim keygen --kind` makes (rsa: 2048 bits, or ed25519)."""
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
    for key, value in (("batch_size", batch), ("processes", processes)):
        if value is not None:
            config = config.replace("[delivery]\n", f"[delivery]\n{key} = {value}\n", 1)
    if not subscribers:
        config = re.sub(r'files = \["subscribers/sample.csv"\]', "files = []", config)
    if dkim:
        run([sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
             "dkim", "keygen", "--selector", "bench", "--domain", "ipbusiness.example.org",
             "--out", str(root / "dkim"), "--kind", dkim_kind], root, config_text=config)
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
             stamps: Path | None = None, *, pipelining: bool = True, tag: str = "",
             batch: int | None = None, processes: int | None = None,
             dkim_kind: str = "rsa") -> dict:
    name = f"send-{'dkim' if dkim else 'plain'}-{rate:g}-{'pipe' if pipelining else 'nopipe'}"
    name += f"-{processes}p" if processes else ""
    name += f"-{dkim_kind}" if dkim else ""
    root = make_project(work / f"{name}{tag}", n, connections, rate, dkim, batch=batch,
                        processes=processes, dkim_kind=dkim_kind)
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


def pg_run(cluster, n: int, processes: int, connections: int, work: Path,  # noqa: ANN001
           tag: str = "", batch: int | None = None) -> dict:
    """`processes` senders against ONE PostgreSQL database (a new one on the bench's durable
    cluster) and one sink, each with its own project directory and config, its own
    NEWSLETTER_HOST and `connections` connections as threads of one interpreter
    ([delivery] processes = 1: as one host's sender), all started at once with `send --now`;
    the first one's list is imported beforehand (the others' configs name no CSV).
    Rate = messages / the wall time from the first sender's start of its deliver stage to
    the last sender's end of it: each sender's deliver stage ends when it exits (as seen
    here) less nothing and starts its own `deliver` seconds earlier, so the few ms between
    the end of delivery and the exit shift both ends alike."""
    url = cluster.url(cluster.new_database())
    roots = [make_project(work / f"pg{processes}-{k}{tag}", n, connections, 0, False,
                          batch=batch, subscribers=k == 0, processes=1)
             for k in range(processes)]

    def nl(root: Path) -> list[str]:
        return [sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml")]

    db_env = {"NEWSLETTER_DATABASE_URL": url}
    import_s, _, _ = run(nl(roots[0]) + ["subscribers", "import", "subscribers/sample.csv"],
                         roots[0], db_env)
    sink = SinkProcess()
    env = {**os.environ, **db_env, "NEWSLETTER_SECRET": "bench-secret",
           "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?timeout=30",
           "NEWSLETTER_TIMINGS": "1"}
    ends: list[tuple[float, str, str, int, int]] = [(0.0, "", "", 0, 0)] * processes
    try:
        procs = [_Measured(nl(root) + ["send", "--now", NOW], cwd=root,
                           env={**env, "NEWSLETTER_HOST": f"bench-host-{k}"},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k, root in enumerate(roots)]

        def reap(k: int) -> None:
            out, err = procs[k].communicate()
            ends[k] = (time.monotonic(), out, err, procs[k].returncode, procs[k].peak_rss_kb)

        reapers = [threading.Thread(target=reap, args=(k,)) for k in range(processes)]
        for t in reapers:
            t.start()
        for t in reapers:
            t.join()
    finally:
        received = sink.stop()
    for _, out, err, code, _ in ends:
        if code != 0:
            raise SystemExit(f"a PostgreSQL sender failed ({code}):\n{out}\n{err}")
    # A sender that found nothing left to send (it started after the others had claimed
    # everything) prints no deliver stage and takes no part in the window.
    stages = [(e[0], float(m[1])) for e in ends
              if (m := re.search(r"deliver ([\d.]+) s", e[1]))]
    window = max(end for end, _ in stages) - min(end - d for end, d in stages)
    sent = sum(int(re.search(r"sent (\d+)", e[1].splitlines()[-1])[1]) for e in ends)
    return {"name": f"pg-{processes}", "n": n, "dkim": False, "pipelining": True,
            "processes": processes, "sent": sent, "received": received, "seconds": window,
            "import_s": import_s, "freeze_s": 0.0, "deliver_s": window, "rate": sent / window,
            "rss_mb": max(e[4] for e in ends) / 1024,
            "rss_each_mb": [e[4] / 1024 for e in ends], "root": str(work),
            "sink_cores": sink.cores}


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
                        help="comma-separated runs to make (e.g. wire,plain,pg-2; default all)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="[delivery] batch_size of every send run (default: the program's)")
    parser.add_argument("--connection-counts", default="1,4,10",
                        help="more send runs (DKIM off) at these connection counts, beside "
                        "listmonk's figures (default 1,4,10; '' for none)")
    parser.add_argument("--pg-processes", default="1,2,4",
                        help="sender processes of the PostgreSQL runs (default 1,2,4)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    pg_counts = [int(x) for x in args.pg_processes.split(",") if x]
    if only:
        pg_counts = [p for p in pg_counts if f"pg-{p}" in only]
    with ExitStack() as stack:
        cluster = None
        if pg_counts:
            try:  # fsync and synchronous_commit on, as Debian ships them
                cluster = stack.enter_context(throwaway_cluster(durable=True))
            except PgUnavailable as exc:
                print(f"the PostgreSQL runs are skipped: {exc}", flush=True)
        bench(args, only, cluster, pg_counts if cluster else [])


def bench(args: argparse.Namespace, only: set[str], cluster,  # noqa: ANN001
          pg_counts: list[int]) -> None:
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    batch = args.batch_size
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
                                          pipelining=False, tag=tag, batch=batch)),
                 ("plain", partial(send_run, args.n, args.connections, 0, False, work, tag=tag,
                                   batch=batch)),
                 ("plain-1p", partial(send_run, args.n, args.connections, 0, False, work,
                                      tag=tag, batch=batch, processes=1))]
        steps += [(f"plain-c{c}", partial(send_run, args.n, c, 0, False, work,
                                          tag=f"{tag}-c{c}", batch=batch))
                  for c in _counts(args.connection_counts) if c != args.connections]
        steps += [(f"pg-{p}", partial(pg_run, cluster, args.n, p, args.connections, work,
                                      tag=tag, batch=batch)) for p in pg_counts]
        if not args.no_dkim:
            steps += [(name, partial(send_run, args.n, args.connections, 0, True, work,
                                     tag=tag, batch=batch, dkim_kind=kind))
                      for name, kind in (("dkim", "rsa"), ("dkim-ed25519", "ed25519"))]
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
    "plain-1p": "newsletter send, DKIM off, one process ([delivery] processes = 1), SQLite",
    **{f"plain-c{c}": f"newsletter send, DKIM off, {c} connection(s)" for c in LISTMONK},
    "pg-1": "newsletter send, DKIM off, PostgreSQL, 1 process ({c} connections)",
    "pg-2": "newsletter send, DKIM off, PostgreSQL, 2 processes ({c} connections each)",
    "pg-4": "newsletter send, DKIM off, PostgreSQL, 4 processes ({c} connections each)",
    "dkim": "newsletter send, DKIM on (RSA-2048)",
    "dkim-ed25519": "newsletter send, DKIM on (Ed25519)",
    "mailmerge": "peer: mailmerge 2.3.0 (one connection per message)",
}


def pg_lines(rows: dict[str, dict]) -> list[str]:
    """The PostgreSQL runs as ratios to the SQLite single-process run of the same bench."""
    pg = {int(k[3:]): r for k, r in rows.items() if k.startswith("pg-")}
    ref = "plain-1p" if "plain-1p" in rows else "plain"
    if not pg or ref not in rows:
        return []
    base = rows[ref]["rate"]
    out = ["", "PostgreSQL (one database, fsync on; rate = messages / first sender's start to "
           f"last sender's end of delivery), as ratios to SQLite, {LABELS[ref]} "
           f"({base:,.0f} msg/s): "
           + ", ".join(f"{p} process(es) {r['rate']:,.0f} msg/s = {r['rate'] / base:.2f}×"
                       for p, r in sorted(pg.items()))]
    if 1 in pg and 2 in pg:
        out.append(f"2 processes ÷ 1 process on PostgreSQL: {pg[2]['rate'] / pg[1]['rate']:.2f}×")
    return out


def _counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


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
        label = LABELS.get(name, name).format(c=args.connections)
        rss = f"{r['rss_mb']:.0f} MB" if r.get("rss_mb") else ""
        if r.get("rss_each_mb"):  # the PostgreSQL senders: each process's peak
            rss = " / ".join(f"{m:.0f}" for m in r["rss_each_mb"]) + " MB"
        stages = (f"{r['import_s']:.1f} s | {r['freeze_s']:.1f} s | {r['deliver_s']:.1f} s"
                  if "deliver_s" in r and not name.startswith("pg-") else " | | ")
        lines.append(f"| {label} | {r['rate']:,.0f} | {r['rate'] / top:.2f} | "
                     f"{r['sink_cores']:.2f} | {rss} | {stages} |")
    lines += pg_lines(rows)
    lines += listmonk_lines(rows, args.connections)
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
