"""One recipient's effect on the list (inside the caller's transaction): a bounce event, and
the subscriber suppressed, counted toward the soft limit, or left alone."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from newsletter.audience.bounce_report import Recipient, Report, one_line
from newsletter.audience.consent import status_event
from newsletter.config import Config
from newsletter.store import bounces as store_bounces
from newsletter.store import suppression as store_suppression
from newsletter.store.db import Db
from newsletter.store.stamps import stamp
from newsletter.store.subscribers import get_subscriber

# "550 5.1.1 ", "550-5.1.1 ": the reply code and enhanced status quoted in a diagnostic
_CODES_RE = re.compile(r"^[245]\d\d[ -]|(?<!\S)[245]\d\d-?\s*[245]\.\d{1,3}\.\d{1,3}\s*")
FINAL = ("unsubscribed", "bounced", "complained")  # never downgraded or re-activated
_SOURCE = {"unsubscribed": "unsubscribe by mail", "bounced": "bounce report",
           "complained": "complaint report"}


@dataclass(frozen=True)
class Change:
    email: str
    status: str  # bounced | complained | unsubscribed
    why: str


@dataclass
class BounceRun:
    """The tally of one run, filled in as reports are processed."""

    read: int = 0
    new: int = 0
    already: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    soft: int = 0
    ours: int = 0
    ignored: int = 0
    changes: list[Change] = field(default_factory=list)
    ours_reasons: Counter = field(default_factory=Counter)  # (reason, domain) -> count

    def summary(self, seconds: float, *, dry_run: bool = False) -> str:
        head = "bounces (dry run, nothing changed)" if dry_run else "bounces"
        return (f"{head}: {self.read} report(s) read, {self.new} new, {self.already} already "
                f"processed; {self.bounced} bounced, {self.complained} complained, "
                f"{self.soft} soft recorded, {self.ours} refused for sender reasons"
                f"{self.ours_note()}, {self.ignored} ignored in {seconds:.1f} s")

    def ours_note(self) -> str:
        """' (37 at example.com: authfailure; ...)': the top sender-side reasons."""
        top = self.ours_reasons.most_common(3)
        return f" ({'; '.join(f'{n} at {d}: {r}' for (r, d), n in top)})" if top else ""


def apply_recipient(conn: Db, key: str, recipient: Recipient, report: Report,
           config: Config, now: datetime, run: BounceRun) -> tuple[str, str]:
    """One recipient's event and status change: (action, note for the outcome)."""
    address, klass = recipient.address, recipient.klass
    if klass == "none" and report.kind != "unsubscribe":
        return "none", f"{address} (no failure)"
    if klass == "ours":  # never touches the reader (the sender is the problem)
        domain = address.rpartition("@")[2]
        _event(conn, address, "ours", key, now, recipient.reason, domain)
        run.ours += 1
        run.ours_reasons[(recipient.reason or "policy", domain)] += 1
        return "reported", f"{address} (refused for sender reasons: {recipient.reason})"
    sub = get_subscriber(conn, address)  # the column is COLLATE NOCASE
    if sub is None:
        return "none", f"{address} (not a subscriber)"
    kind = "unsubscribe" if report.kind == "unsubscribe" else klass
    _event(conn, sub.email, kind, key, now, recipient.reason)
    run.soft += kind == "soft"
    if sub.status in FINAL:
        action = "soft-recorded" if kind == "soft" else "none"
        return action, f"{sub.email} (already {sub.status})"
    change = _change(conn, sub.email, kind, recipient, report, config, now)
    if change is None and recipient.reason == "delayed":
        return "soft-recorded", f"{sub.email} (a delay warning: not counted toward the limit)"
    if change is None:
        count = _recent_soft(conn, sub.email, now, config.soft_bounce_window_days)
        return "soft-recorded", (f"{sub.email} ({count} of {config.soft_bounce_limit} in "
                                 f"{config.soft_bounce_window_days} days)")
    status, why, reason = change
    store_suppression.change_status(conn, sub.email, status, reason, stamp(now))
    status_event(conn, sub.email, status, _SOURCE[status], reason, now)  # consent history
    run.changes.append(Change(sub.email, status, why))
    run.bounced += status == "bounced"
    run.complained += status == "complained"
    run.unsubscribed += status == "unsubscribed"
    return "suppressed", f"{sub.email} ({status})"


def _change(conn: Db, email: str, kind: str, recipient: Recipient,
            report: Report, config: Config, now: datetime) -> tuple[str, str, str] | None:
    """(status, why, reason) the subscriber moves to, or None (a soft bounce under the limit)."""
    date = now.astimezone(config.timezone).date().isoformat()
    days, limit = config.soft_bounce_window_days, config.soft_bounce_limit
    if kind == "unsubscribe":
        return "unsubscribed", "unsubscribe by mail", "unsubscribe by mail"
    if kind == "soft" and recipient.reason == "delayed":
        return None  # a warning: the final report of the same message is what counts
    if kind == "soft":
        count = _recent_soft(conn, email, now, days)
        if count < limit:
            return None
        why = f"{count} soft bounces in {days} days"
        return "bounced", why, why
    label = "hard bounce" if kind == "hard" else "complaint"
    detail = _detail(recipient) if kind == "hard" else report.detail
    return ("complained" if kind == "complaint" else "bounced", f"{label}: {detail}",
            f"{label} {date}: {detail}")


def _detail(recipient: Recipient) -> str:
    """'5.1.1 <a@x>: Recipient address rejected: ...': reply codes folded into one status."""
    text = _CODES_RE.sub(" ", recipient.diagnostic).strip()
    text = text.removeprefix(recipient.status).strip() if recipient.status else text
    return one_line(f"{recipient.status} {text}") or recipient.reason


def _event(conn: Db, email: str, kind: str, key: str, now: datetime,
           reason: str = "", domain: str = "") -> None:
    store_suppression.record_event(conn, email, kind, key, stamp(now), reason, domain)


def _recent_soft(conn: Db, address: str, now: datetime, days: int) -> int:
    return store_suppression.recent_soft(conn, address, stamp(now - timedelta(days=days)),
                                         stamp(now))


def month_summary(conn: Db, now: datetime, zone: tzinfo) -> str:
    """`status`: this month's events, '' when there are none.

    "bounces this month: 3 hard, 5 soft, 1 complaints, 37 refused for sender reasons
    (37 at example.com: authfailure)"
    """
    local = now.astimezone(zone)
    start = stamp(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    counts = store_bounces.event_counts_since(conn, start)
    if not counts:
        return ""
    top = store_bounces.top_sender_refusals(conn, start)
    why = "; ".join(f"{n} at {domain or '?'}: {reason or 'policy'}" for reason, domain, n in top)
    return (f"bounces this month: {counts.get('hard', 0)} hard, {counts.get('soft', 0)} soft, "
            f"{counts.get('complaint', 0)} complaints, {counts.get('ours', 0)} refused for "
            f"sender reasons" + (f" ({why})" if why else ""))
