"""`make bench`: end-to-end send throughput against a loopback SMTP sink, as ratios to the wire
(a pipelined sender of pre-built messages, bench/wire.py) measured in the same run, beside
smtplib and a peer (mailmerge). Runs alternate and repeat; the table shows medians. Prints a
table and writes it to bench/results/.

    python bench/run.py [--n 10000] [--connections 2] [--rate 50] [--repeat 3] [--no-dkim]
                        [--connection-counts 1,4,10] [--pg-processes 1,2,4] [--only …]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
from machine import MachineLoad  # noqa: E402
from peer import mailmerge_run  # noqa: E402
from procs import Measured, SinkProcess, run  # noqa: E402
from project import make_project  # noqa: E402
from report import render_report  # noqa: E402
from wire import smtplib_ceiling, wire  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from pg_server import PgUnavailable, throwaway_cluster  # noqa: E402

RESULTS = REPO / "bench" / "results"
NOW = "2026-11-22T10:00"


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
        load = MachineLoad()
        seconds, rss_kb, out = run(nl + ["send", "--now", NOW], root, env)
        busy = load.busy()
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
            "sink_cores": sink_cores, "machine_busy": busy}


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
    load = MachineLoad()
    try:
        procs = [Measured(nl(root) + ["send", "--now", NOW], cwd=root,
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
        busy = load.busy()
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
            "sink_cores": sink.cores, "machine_busy": busy}


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
    load = MachineLoad()
    try:
        if kind == "wire":
            rate = wire(sink.port, message, count, connections)
        elif kind == "smtplib":
            rate = smtplib_ceiling(sink.port, message, count, connections)
        else:
            rate = mailmerge_run(sink.port, message, count, work / f"peer-{time.time_ns()}")
        busy = load.busy()
    finally:
        received = sink.stop()
    return {"name": kind, "rate": rate, "sent": count if rate else 0, "received": received,
            "sink_cores": sink.cores, "machine_busy": busy}


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
    pg_counts = _counts(args.pg_processes)
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


def _counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    main()
