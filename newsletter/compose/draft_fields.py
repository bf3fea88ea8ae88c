"""A draft's front matter fields checked one by one: types, one-line headers, send_at."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from newsletter.compose.audience_spec import parse_audience
from newsletter.compose.signoff import parse_approval
from newsletter.headers import header_text_problem

STATUSES = ("draft", "ready")
FIELDS = {
    "subject": str, "preheader": str, "status": str, "send_at": str,
    "feeds": list, "exclude": list, "translated_from": str,
    "audience": dict, "approved_by": str,  # read by audience.py and signoff.py (a mapping too)
}
_MAY_BE_EMPTY = ("preheader", "send_at", "translated_from", "audience", "approved_by")
# The subject is a header and the preheader the line an inbox shows after it. Refused here,
# with the draft's file and line, by the same rule message.py applies (newsletter.headers),
# rather than when the first message is built, after the edition is frozen.
_INBOX_LINES = ("subject", "preheader")
_VERSION_RE = re.compile(r"^[0-9a-f]{12}$")

Problem = Callable[[str, str], None]  # (key, message): one problem with a field


def check_fields(meta: dict, lines: dict[str, int], problems: list[str],
                 timezone: ZoneInfo, unread: frozenset[str] = frozenset()) -> dict:
    """The fields Draft is built from; each problem is appended to PROBLEMS with its line."""
    def problem(key: str, message: str) -> None:
        if key in unread:  # its line could not be read: reported there already
            return
        problems.append(f"line {lines.get(key, 1)}: front matter: '{key}' {message}"
                        if key in lines else f"front matter: '{key}' {message}")

    fields: dict = {}
    for key, value in meta.items():
        _check_field(key, value, problem, fields)
    if "subject" not in meta:
        problem("subject", "is missing")
    elif fields.get("subject") == "":
        problem("subject", "is empty")
    status = fields.get("status", "draft")
    if status not in STATUSES:
        problem("status", f"must be one of {', '.join(STATUSES)}, not {status!r}")
    if "send_at" in fields:
        _read_send_at(fields, problem, timezone)
    return fields


def _check_field(key: str, value: object, problem: Problem, fields: dict) -> None:
    expected = FIELDS.get(str(key))
    if expected is None:
        problem(str(key), f"is not a known key (known: {', '.join(FIELDS)})")
    elif value is None and key in _MAY_BE_EMPTY:
        return
    elif key == "translated_from" and isinstance(value, dict):
        _check_translated_sections(value, problem, fields)
    elif key == "audience":
        audience, troubles = parse_audience(value)
        for trouble in troubles:
            problem(key, trouble)
        if audience is not None:
            fields[key] = audience
    elif key == "approved_by":
        approval, trouble = parse_approval(value)
        if approval is None:
            problem(key, trouble)
        fields[key] = approval
    elif trouble := _value_problem(key, value, expected):
        problem(key, trouble)
    else:
        fields[key] = value.strip() if isinstance(value, str) else value


def _value_problem(key: str, value: object, expected: type) -> str:
    """What is wrong with a text or list field; "" when nothing is."""
    if not isinstance(value, expected):
        return (f"must be {'a list' if expected is list else 'text'}, "
                f"not {type(value).__name__}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return "must be a list of names or links"
    if isinstance(value, str) and ("\n" in value.strip() or "\r" in value):
        return "must be on one line"
    if isinstance(value, str) and key in _INBOX_LINES:
        # .strip(): a '>' block ends with the newline YAML adds; it is not in the text
        return header_text_problem(value.strip())
    return ""


def _read_send_at(fields: dict, problem: Problem, timezone: ZoneInfo) -> None:
    try:
        fields["send_at"] = parse_send_at(fields["send_at"], timezone)
    except ValueError:
        problem("send_at", f"must be an ISO 8601 date or date-time, not "
                           f"{fields['send_at']!r}: write it as send_at: 2027-01-06T09:00 "
                           f"(a time without an offset is in {timezone.key}; add one, "
                           f"as in 2027-01-06T09:00+01:00, for another zone)")
        del fields["send_at"]


def _check_translated_sections(value: dict, problem: Problem, fields: dict) -> None:
    """translated_from as a mapping: section key (the default's heading, or intro) -> the
    12-hex-digit version of that section it was translated from (newsletter.translate)."""
    pairs = []
    for key, version in value.items():
        if not isinstance(key, str) or not isinstance(version, str) \
                or not _VERSION_RE.match(version):
            problem("translated_from", f"entry {key!r}: must map a section heading to the "
                                       "12 hex digits `check` printed for it")
            return
        pairs.append((key, version))
    fields["translated_sections"] = tuple(pairs)


def parse_send_at(value: str, timezone: ZoneInfo) -> datetime:
    """A date means midnight; a time without an offset is in the configured zone."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        moment = datetime.combine(date.fromisoformat(value), time())
    else:
        moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone)
