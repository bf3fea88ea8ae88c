"""How busy the whole machine was during a run: the share of all cores' time not idle, from
/proc/stat (proc(5): the cpu line's idle and iowait against its total). Near 100 % means
the run was bound by the machine's cores (senders, sink and database server share them),
not by the sender's design: more sender processes cannot go faster then."""

from __future__ import annotations

from pathlib import Path


def _ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])  # guest time is already counted in user (proc(5))
    return total - idle, total


class MachineLoad:
    """Started when made; busy() is the machine's busy share since then (0..1)."""

    def __init__(self) -> None:
        self.start = _ticks()

    def busy(self) -> float:
        busy, total = _ticks()
        return (busy - self.start[0]) / max(1, total - self.start[1])
