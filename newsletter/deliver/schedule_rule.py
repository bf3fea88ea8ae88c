"""When a ready issue is off its schedule: a send_at long past, or far from the issue's month.

Why: cron runs `send` every few minutes. A draft left `ready` from months ago, or a send_at
with the wrong year, would go to every reader the moment it is due; a person should decide.
`check` warns about it, `send` holds it back until acknowledged (see send_safety.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newsletter.compose.drafts import Draft

LATE_GRACE = timedelta(days=7)  # a cron that was down for a weekend still sends on its own
MONTH_MARGIN = timedelta(days=45)  # a December issue sent in late October is still plausible


def month_span(issue: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of issue YYYY-MM in the zone."""
    year, month = (int(part) for part in issue.split("-")[:2])
    start = datetime(year, month, 1, tzinfo=tz)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)


def off_schedule(draft: Draft, now: datetime, tz: ZoneInfo) -> str:
    """Why the ready issue `draft` should not go out unasked at `now`; "" when it may.

    1. send_at more than LATE_GRACE before now, once the issue's month is over (within its
       month a late issue is still that month's news: an approval on the 20th still goes);
    2. send_at more than MONTH_MARGIN before the first day of the issue's month or after
       its last day.
    An issue without send_at is never off schedule: marking it ready without a date says
    "send it at the next run", and cron's next run is minutes away (the sample issue relies
    on this, so that `make send` sends it on any day).
    """
    if draft.send_at is None:
        return ""
    start, end = month_span(draft.issue, tz)
    at = draft.send_at.astimezone(tz)
    late = now - draft.send_at
    if late > LATE_GRACE and now >= end:
        return (f"send_at {at:%Y-%m-%d %H:%M %Z} was {late.days} day(s) ago "
                f"(more than {LATE_GRACE.days}) and {start:%B %Y} is over")
    if draft.send_at < start - MONTH_MARGIN or draft.send_at >= end + MONTH_MARGIN:
        return (f"send_at {at:%Y-%m-%d %H:%M %Z} is more than {MONTH_MARGIN.days} days from "
                f"its month {start:%B %Y}")
    return ""


def held_line(issue: str, why: str) -> str:
    """The one line `send` reports for an issue held off schedule."""
    return (f"{issue}: not sent: off schedule: {why}; `newsletter send {issue} --now` sends "
            "it anyway (or fix send_at, or set status: draft)")


def check_warning(draft: Draft, now: datetime, tz: ZoneInfo, *, default_language: str,
                  frozen: bool) -> tuple[str, str]:
    """(where, message) of `check`'s warning for a ready default edition off schedule that
    was not sent yet; ("", "") when there is nothing to say."""
    if draft.status != "ready" or frozen or draft.language != default_language:
        return "", ""
    why = off_schedule(draft, now, tz)
    if not why:
        return "", ""
    where = str(draft.path)
    try:
        for number, line in enumerate(draft.path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if line.startswith("send_at:"):
                where = f"{draft.path}:{number}"
                break
    except (OSError, UnicodeDecodeError):
        pass  # the draft loaded a moment ago; the file alone is still a fine location
    return where, (f"off schedule: {why}; `newsletter send` holds it until "
                   f"`newsletter send {draft.issue} --now` or a yes at the terminal")
