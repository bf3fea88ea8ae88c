"""Before a send at a terminal: who will get what, per issue and edition, and which issues are
off schedule (schedule_rule). `send` shows it and asks; cron (no terminal) never asks.

The counts are what the run would do now: for an issue it starts, the active subscribers
mapped to the editions that may go (the same rule as the freeze: their language, its primary
subtag, else the default edition); for a started one, its rows due now. Late editions and
segment variants that leave a reader out are decided inside the run, so an issue's count is
an upper bound when segments are in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from newsletter.compose.drafts import Draft
from newsletter.compose.edition import edition_language
from newsletter.compose.signoff import missing_signoff, signed_only
from newsletter.config import Config
from newsletter.deliver.plan import plan_run, translations_of
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.store.sendlog import TransportUse, due_by_language


@dataclass(frozen=True)
class IssuePreview:
    issue: str  # a ledger key: YYYY-MM, or YYYY-MM+LANG for a late edition's rows
    editions: tuple[tuple[str, int], ...]  # (edition language, readers)
    starting: bool  # True: this run freezes it; False: rows of a started issue still due
    off_schedule: str = ""  # why it is held unless acknowledged (schedule_rule)

    @property
    def readers(self) -> int:
        return sum(n for _, n in self.editions)


@dataclass(frozen=True)
class RunPreview:
    issues: tuple[IssuePreview, ...]
    transport: str  # the ledger's label: 'smtp://host:port' or 'maildir:outbox'

    @property
    def readers(self) -> int:
        return sum(i.readers for i in self.issues)

    @property
    def off_schedule(self) -> tuple[IssuePreview, ...]:
        return tuple(i for i in self.issues if i.off_schedule)

    def lines(self) -> list[str]:
        """What the terminal shows before the question."""
        out = []
        for item in self.issues:
            state = "starts now" if item.starting else "started, due now"
            out.append(f"{item.issue} ({state}): {item.readers} reader(s): " + ", ".join(
                f"{lang} {n}" for lang, n in item.editions))
            if item.off_schedule:
                out.append(f"  off schedule: {item.off_schedule}")
        out.append(f"through {self.transport}")
        return out


def preview_run(config: Config, conn: Db, now: datetime, *,
                only: Draft | None, transport: str) -> RunPreview:
    """Who a run at `now` would mail (acknowledged: off-schedule issues included, marked)."""
    strict = plan_run(config, conn, now, only=only)
    held = dict(strict.off_schedule)
    plan = plan_run(config, conn, now, only=only, off_schedule_ok=True)
    today = now.astimezone(config.timezone).date()
    languages = store_subscribers.subscriber_languages(conn)
    issues = []
    for draft in plan.to_freeze:
        if missing_signoff(config.review_required, draft.status, draft.approved_by, today):
            continue  # the run refuses it with its own line
        translations, _ = translations_of(config, draft)
        kept, _held = signed_only(config.review_required, translations, today)
        available = {draft.language.lower()} | {d.language.lower() for d in kept}
        counts: dict[str, int] = {}
        for language, n in languages.items():
            edition = edition_language(language, available, draft.language)
            counts[edition] = counts.get(edition, 0) + n
        issues.append(IssuePreview(draft.issue, tuple(sorted(counts.items())), True,
                                   held.get(draft.issue, "")))
    for key in plan.open_issues:
        due = due_by_language(conn, key, now)
        if due:
            issues.append(IssuePreview(key, tuple(sorted(due.items())), False))
    return RunPreview(tuple(issues), transport)


def is_yes(answer: str) -> bool:
    """Only an explicit yes sends; Enter, EOF and anything else do not."""
    return answer.strip().lower() in ("y", "yes")


def transport_lines(uses: list[TransportUse], tz: ZoneInfo) -> list[str]:
    """For `status`: where an issue's messages went and when, one line per transport."""
    lines = []
    for use in uses:
        first, last = use.first_at.astimezone(tz), use.last_at.astimezone(tz)
        until = "" if f"{first:%Y%m%d%H%M}" == f"{last:%Y%m%d%H%M}" else (
            f"–{last:%H:%M}" if last.date() == first.date() else f"–{last:%Y-%m-%d %H:%M}")
        where = use.transport or "a transport not recorded (sent before the ledger kept it)"
        lines.append(f"via {where}: sent {use.sent} (" + ", ".join(
            f"{lang} {n}" for lang, n in use.by_language) + f"), {first:%Y-%m-%d %H:%M}"
            f"{until} {last:%Z}")
    return lines
