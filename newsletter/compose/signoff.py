"""Sign-off: with `[review] required = true` an edition goes out only when its own front matter
says who approved it and when (`approved_by: {name: "Ana Lima", date: 2027-01-05}`, or the
short form `approved_by: "Ana Lima, 2027-01-05"`). Each ISSUE.LANG.md carries its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from newsletter.headers import header_text_problem

_SHORT_RE = re.compile(r"^(?P<name>.+?),\s*(?P<date>\d{4}-\d{2}-\d{2})$")
_EXAMPLE = 'approved_by: {name: "Ana Lima", date: 2027-01-05}'
MAX_NAME = 100


@dataclass(frozen=True)
class Approval:
    name: str
    date: date

    def __str__(self) -> str:
        return f"{self.name}, {self.date.isoformat()}"


def parse_approval(value: object) -> tuple[Approval | None, str]:
    """(the approval, "") or (None, a phrase that follows "'approved_by' " in an error)."""
    if isinstance(value, str):
        match = _SHORT_RE.match(value.strip())
        if not match:
            return None, f"must be a name and a date, e.g. {_EXAMPLE} or \"Ana Lima, 2027-01-05\""
        name, day = match["name"], match["date"]
    elif isinstance(value, dict):
        unknown = sorted(str(k) for k in value if k not in ("name", "date"))
        if unknown:
            return None, f"has an unknown key {unknown[0][:40]!r} (known: name, date)"
        name, day = value.get("name"), value.get("date")
        if not isinstance(name, str) or not isinstance(day, str):
            return None, f"needs a name and a date (text), e.g. {_EXAMPLE}"
    else:
        return None, f"must be a name and a date, e.g. {_EXAMPLE}"
    name = name.strip()
    if not name:
        return None, f"needs the approver's name, e.g. {_EXAMPLE}"
    if trouble := header_text_problem(name):
        return None, f"name {trouble}"
    if len(name) > MAX_NAME:
        return None, f"name is longer than {MAX_NAME} characters"
    try:
        when = date.fromisoformat(day.strip())
    except ValueError:
        return None, f"date must be an ISO 8601 date like 2027-01-05, not {day.strip()[:20]!r}"
    return Approval(name, when), ""


def missing_signoff(required: bool, status: str, approval: Approval | None,
                    today: date) -> str:
    """Why a ready edition may not go out ("" when it may): no approval, or one dated after
    today (a typo in the year, most likely)."""
    if not required or status != "ready":
        return ""
    if approval is None:
        return ("[review] required = true and there is no approved_by: the edition needs "
                f"its reviewer's name and date first ({_EXAMPLE})")
    if approval.date > today:
        return (f"approved_by is dated {approval.date.isoformat()}, after today "
                f"({today.isoformat()}): correct the date")
    return ""


def signed_only(required: bool, drafts: list, today: date) -> tuple[list, list[str]]:
    """The ready language editions that may go out, and one line for each held back (its
    readers get the default edition meanwhile, and the late-edition path sends theirs once
    it is approved within the month). `drafts` are drafts.Draft."""
    kept, held = [], []
    for draft in drafts:
        why = missing_signoff(required, draft.status, draft.approved_by, today)
        if why:
            held.append(f"{draft.issue}: '{draft.language}' edition not sent yet: "
                        f"{draft.path}: {why}")
        else:
            kept.append(draft)
    return kept, held
