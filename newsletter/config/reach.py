"""[reach] in newsletter.toml: whether links are counted, and the scanner window."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config.problems import Problems


@dataclass(frozen=True)
class ReachSettings:
    # Off unless asked for: a counted link leads through `newsletter serve` at base_url,
    # and mail is kept for years, so it only works where serve answers there for good.
    count_clicks: bool = False
    # A request for the canary marks its client as a link scanner: its hits from this many
    # seconds before to this many seconds after are not counted.
    scanner_seconds: int = 10


def parse_reach(p: Problems, raw: object) -> ReachSettings:
    """[reach] count_clicks = true|false, scanner_seconds = N (1..300)."""
    table = raw if isinstance(raw, dict) else {}
    defaults = ReachSettings()
    count = table.get("count_clicks", defaults.count_clicks)
    if not isinstance(count, bool):
        p.add("reach.count_clicks", "must be true or false")
        count = defaults.count_clicks
    seconds = p.number(table, "scanner_seconds", "reach", defaults.scanner_seconds, minimum=1,
                       integer=True)
    if seconds > 300:
        p.add("reach.scanner_seconds", "must be at most 300 (client addresses are kept in "
              "memory that long)")
        seconds = defaults.scanner_seconds
    return ReachSettings(count_clicks=count, scanner_seconds=seconds)
