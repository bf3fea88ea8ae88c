"""listmonk's figures beside `newsletter send` at the same connection counts.

listmonk (Go, PostgreSQL) cannot be built in the bench: neither its source (GitHub) nor its
Go modules (proxy.golang.org) can be fetched from this machine. Its figures are issue 17's,
measured on this machine (v2.5.1 built from its source, the same sink, 10,000 subscribers,
38 KB messages): fixed references, not this run's. The bench's own rows `plain-cK` are
`newsletter send` (DKIM off, SQLite, the default processes) with K connections, measured in
this run.
"""

from __future__ import annotations

LISTMONK = {1: 1_243, 2: 1_715, 4: 2_076, 10: 2_381}  # msg/s by connections (issue 17)


def connection_rows(rows: dict[str, dict], connections: int) -> dict[int, float]:
    """This run's send DKIM off msg/s by connection count (the bench's own count: `plain`)."""
    found = {int(k[7:]): r["rate"] for k, r in rows.items() if k.startswith("plain-c")}
    if "plain" in rows:
        found[connections] = rows["plain"]["rate"]
    return dict(sorted(found.items()))


def listmonk_lines(rows: dict[str, dict], connections: int) -> list[str]:
    """A table of this run's send against listmonk's figures, by connection count."""
    mine = connection_rows(rows, connections)
    if not mine:
        return []
    out = ["", "`newsletter send` (DKIM off) by connections, beside listmonk v2.5.1's figures "
           "from issue 17 (same machine and sink; not measured in this run):", "",
           "| connections | newsletter send msg/s | listmonk msg/s | × listmonk |",
           "|---:|---:|---:|---:|"]
    for count, rate in mine.items():
        theirs = LISTMONK.get(count)
        ratio = f"{rate / theirs:.2f}" if theirs else ""
        out.append(f"| {count} | {rate:,.0f} | {f'{theirs:,}' if theirs else ''} | {ratio} |")
    return out
