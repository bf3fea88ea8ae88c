"""Collects fault cases for the table `make faults` prints at the end of the run."""

from __future__ import annotations

ROWS: list[tuple[str, str, str, str]] = []


def record(case: str, expected: str, observed: str, copies: str) -> None:
    ROWS.append((case, expected, observed, copies))


def render() -> str:
    header = ("case", "expected", "observed", "copies per address")
    widths = [max(len(r[i]) for r in [header, *ROWS]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in ROWS]
    return "\n".join([line, rule, *body])
