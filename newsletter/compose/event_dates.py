"""Event titles: the date a feed writes at the head of a title ("12 November 2026 — Webinar:
..."), read so that every edition shows it in its own language's pattern.

Feeds write event dates in English inside the title; an Arabic edition that printed them as
they are showed "12 November 2026" beside Arabic item dates. The head is read here and
formatted with the locale's own skeleton; a head that is not a date we can read stays as
the feed wrote it (a translator may have written it in the edition's language already).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date

from babel.dates import format_skeleton

from newsletter.i18n import babel_locale

# The separators feeds put between the date and the title, longest first.
_SEPARATORS = (" — ", " – ", " -- ")
_MONTHS = {name: i for i, names in enumerate(
    (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
     ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
     ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
     ("december", "dec")), start=1) for name in names}
_DAY_MONTH_YEAR = re.compile(r"^(?:[A-Za-z]+,?\s+)?(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})$")
_MONTH_DAY_YEAR = re.compile(r"^(?:[A-Za-z]+,?\s+)?([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# The event's day in full: "12 novembre 2026", "2026年11月12日", "12 ноября 2026 г.".
EVENT_SKELETON = "yMMMMd"


@dataclass(frozen=True)
class EventTitle:
    """An event title cut at its date: HEAD is the text before the separator ("" when the
    title has none), DAY the date it names when we can read it, REST the title proper."""

    head: str
    day: date | None
    rest: str

    def label(self, language: str) -> str:
        """The head as the edition shows it: the day in the language's pattern, else the
        feed's own text."""
        if self.day is None:
            return self.head
        return format_skeleton(EVENT_SKELETON, self.day, tzinfo=UTC,
                               locale=babel_locale(language))


def split_event_title(title: str) -> EventTitle:
    for separator in _SEPARATORS:
        if separator in title:
            head, rest = title.split(separator, 1)
            return EventTitle(head.strip(), parse_english_day(head), rest.strip())
    return EventTitle("", None, title)


def parse_english_day(text: str) -> date | None:
    """'12 November 2026', 'Thursday 12 Nov. 2026', 'November 12, 2026', '2026-11-12';
    None for anything else (a range, another language, a typo)."""
    value = " ".join(text.split())
    if found := _ISO.match(value):
        year, month, day = (int(g) for g in found.groups())
    elif found := _DAY_MONTH_YEAR.match(value):
        day, month, year = int(found[1]), _MONTHS.get(found[2].lower(), 0), int(found[3])
    elif found := _MONTH_DAY_YEAR.match(value):
        month, day, year = _MONTHS.get(found[1].lower(), 0), int(found[2]), int(found[3])
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:  # month 0 (not a month name), 31 November
        return None


def event_title_line(title: str, language: str) -> str:
    """The whole title for the text part: 'DAY — TITLE' with the day in the language."""
    parts = split_event_title(title)
    return f"{parts.label(language)} — {parts.rest}" if parts.head else parts.rest
