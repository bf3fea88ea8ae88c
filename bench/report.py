"""The bench's table: each run's rate as a ratio to the wire, the sink's cores, how busy the
machine was, peak memory and the stages' times; then PostgreSQL as ratios to SQLite, the
connection counts beside listmonk's figures, mailmerge and the rate check."""

from __future__ import annotations

import argparse
import os

from listmonk import LISTMONK, listmonk_lines

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


def render_report(args: argparse.Namespace, size: int, rows: dict[str, dict],
                  rate_row: dict | None) -> str:
    top = rows["wire"]["rate"] if "wire" in rows else float("nan")
    lines = [
        f"# newsletter bench: N={args.n:,}, {args.connections} connection(s), "
        f"{size / 1024:.1f} KB messages, {os.cpu_count()} CPU(s), medians of {args.repeat} "
        "alternating rounds",
        "",
        "| run | msg/s | × the wire | sink cores | machine busy | peak RSS | import | freeze "
        "| deliver |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        label = LABELS.get(name, name).format(c=args.connections)
        rss = f"{r['rss_mb']:.0f} MB" if r.get("rss_mb") else ""
        if r.get("rss_each_mb"):  # the PostgreSQL senders: each process's peak
            rss = " / ".join(f"{m:.0f}" for m in r["rss_each_mb"]) + " MB"
        stages = (f"{r['import_s']:.1f} s | {r['freeze_s']:.1f} s | {r['deliver_s']:.1f} s"
                  if "deliver_s" in r and not name.startswith("pg-") else " | | ")
        lines.append(f"| {label} | {r['rate']:,.0f} | {r['rate'] / top:.2f} | "
                     f"{r['sink_cores']:.2f} | {r.get('machine_busy', 0):.0%} | {rss} | "
                     f"{stages} |")
    lines += ["", "machine busy: the share of all the machine's cores in use during the run "
              "(/proc/stat: senders, sink and database server together); near 100 %, more "
              "sender processes cannot go faster on this machine."]
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
