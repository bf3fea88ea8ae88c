"""`newsletter report ISSUE`: the month's figures per edition, as a table and an HTML page.

Delivered and failed are the ledger's own counts. Bounces (by class), complaints and
unsubscribes are the return path's, for the addresses the issue was sent to, from its first
freeze to 31 days later (bounces and complaints stop earlier when the next issue goes out,
so that they are not counted twice). Clicks are the counted links' totals (newsletter.reach);
any click count from 1 to 9 is shown as "<10", so that a small count cannot point at a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.store import reach as store_reach
from newsletter.store.db import Db

MONTH = timedelta(days=31)
K = 10  # counts below this (and above 0) are shown as "<10"
BOUNCE_CLASSES = ("hard", "soft", "ours")


def shown(count: int) -> str:
    """A click count as the report shows it: 0, "<10", or the number from 10 up."""
    return f"<{K}" if 0 < count < K else str(count)


@dataclass(frozen=True)
class LinkLine:
    url: str
    clicks: int
    filtered: int  # scanner hits, not counted


@dataclass(frozen=True)
class EditionFigures:
    language: str
    delivered: int
    failed: int  # refused at send time (5xx, or retried until given up)
    bounced: tuple[tuple[str, int], ...]  # (class, readers): hard, soft, ours
    complained: int
    unsubscribed: int
    links: tuple[LinkLine, ...]
    scanner_visits: int  # canary hits: messages a link scanner opened

    @property
    def clicks(self) -> int:
        return sum(link.clicks for link in self.links)

    def bounce(self, kind: str) -> int:
        return dict(self.bounced).get(kind, 0)


@dataclass(frozen=True)
class IssueReport:
    issue: str
    first_sent: datetime
    window_end: datetime  # bounces and complaints counted until here
    editions: tuple[EditionFigures, ...]

    @property
    def counted_links(self) -> bool:
        return any(e.links or e.scanner_visits for e in self.editions)


def issue_report(conn: Db, issue: str) -> IssueReport:
    first = store_reach.first_frozen(conn, issue)
    if first is None:
        raise InputError(f"{issue} has not been sent (no frozen edition): nothing to report "
                         "yet (run `newsletter status`)")
    following = store_reach.next_frozen(conn, issue)
    end = min(first + MONTH, following) if following else first + MONTH
    states = store_reach.delivery_states(conn, issue)
    events = store_reach.return_path_events(conn, issue, first, end)
    unsubscribed = store_reach.unsubscribed_after(conn, issue, first, MONTH.days)
    links: dict[str, list[LinkLine]] = {}
    scanners: dict[str, int] = {}
    for row in store_reach.link_counts(conn, issue):
        if row.url == store_reach.CANARY:
            scanners[row.language] = row.clicks + row.filtered
        else:
            links.setdefault(row.language, []).append(LinkLine(row.url, row.clicks,
                                                               row.filtered))
    languages = sorted(set(states) | set(links), key=lambda lang: (-sum(
        states.get(lang, {}).values()), lang))
    return IssueReport(issue, first, end, tuple(EditionFigures(
        language=lang,
        delivered=states.get(lang, {}).get("sent", 0),
        failed=states.get(lang, {}).get("failed", 0),
        bounced=tuple((k, events.get(lang, {}).get(k, 0)) for k in BOUNCE_CLASSES),
        complained=events.get(lang, {}).get("complaint", 0),
        unsubscribed=unsubscribed.get(lang, 0),
        links=tuple(links.get(lang, ())),
        scanner_visits=scanners.get(lang, 0)) for lang in languages))


COLUMNS = ("edition", "delivered", "failed", "hard", "soft", "ours", "complained",
           "unsubscribed", "clicks")


def figures_row(e: EditionFigures) -> tuple[str, ...]:
    return (e.language, str(e.delivered), str(e.failed), *(str(e.bounce(k)) for k in
            BOUNCE_CLASSES), str(e.complained), str(e.unsubscribed), shown(e.clicks))


def total_row(report: IssueReport) -> tuple[str, ...]:
    es = report.editions
    return ("all", str(sum(e.delivered for e in es)), str(sum(e.failed for e in es)),
            *(str(sum(e.bounce(k) for e in es)) for k in BOUNCE_CLASSES),
            str(sum(e.complained for e in es)), str(sum(e.unsubscribed for e in es)),
            shown(sum(e.clicks for e in es)))


def table_lines(report: IssueReport, zone: object = None) -> list[str]:
    """The report as aligned plain-text lines (what `newsletter report` prints)."""
    rows = [COLUMNS, *map(figures_row, report.editions)]
    if len(report.editions) > 1:
        rows.append(total_row(report))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [f"{report.issue}: first sent {_when(report.first_sent, zone)}; bounces and "
             f"complaints until {_when(report.window_end, zone)}, unsubscribes for 31 days"]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(row, widths, strict=True))) for row in rows]
    if not report.counted_links:
        lines.append("clicks: not counted for this issue ([reach] count_clicks was off)")
        return lines
    lines.append(f"clicks per link (1 to {K - 1} shown as <{K}; link scanners not counted):")
    for e in report.editions:
        width = max((len(shown(link.clicks)) for link in e.links), default=1)
        for link in e.links:
            lines.append(f"  {e.language}  {shown(link.clicks).rjust(width)}  {link.url}")
        if e.scanner_visits:
            lines.append(f"  {e.language}  link scanners opened the message "
                         f"{shown(e.scanner_visits)} time(s); their hits were not counted")
    return lines


def _when(moment: datetime, zone: object) -> str:
    local = moment.astimezone(zone) if zone else moment  # type: ignore[arg-type]
    return local.strftime("%Y-%m-%d %H:%M %Z").strip()


def report_path(config: Config, issue: str, out: str | None) -> Path:
    return Path(out) if out else config.root / "build" / issue / "report.html"
