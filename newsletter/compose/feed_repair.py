"""Repairs for what feeds get wrong and feedparser reads wrongly: bare ampersands, references
to no character, and dates that name no real moment."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A "&" that starts no entity or character reference (XML 1.0 §4.1): "R&D", "Q&A".
_BARE_AMP_RE = re.compile(rb"&(?!(?:[A-Za-z_:][\w.:-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_CHARREF_RE = re.compile(rb"&#([0-9]+|[xX][0-9A-Fa-f]+);")
_VERBATIM_RE = re.compile(rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->", re.DOTALL)


def escape_bare_ampersands(document: bytes) -> tuple[bytes, int]:
    """Bare ampersands outside CDATA sections and comments escaped, and how many there were.
    An expat parse stops at the first one and feedparser's lenient fallback reads "R&D tax"
    as "R&D; tax"; escaped, the document is well-formed and reads as its author meant."""
    out, count, last = [], 0, 0
    for verbatim in _VERBATIM_RE.finditer(document):
        fixed, n = _repair(document[last:verbatim.start()])
        out += [fixed, verbatim.group()]
        count, last = count + n, verbatim.end()
    fixed, n = _repair(document[last:])
    return b"".join([*out, fixed]), count + n


def _repair(text: bytes) -> tuple[bytes, int]:
    text = _CHARREF_RE.sub(_charref, text)
    return _BARE_AMP_RE.subn(b"&amp;", text)


def _charref(match: re.Match[bytes]) -> bytes:
    ref = match.group(1)
    # A reference to no Char (XML 1.0 §2.2: a surrogate or past U+10FFFF) makes feedparser's
    # lenient parser raise; U+FFFD is what XML-aware readers show for it.
    if not _is_char(ref):
        return b"&#xFFFD;"
    # "&#X41;" is a reference in HTML and SGML but not in XML, whose hex form is "&#x"
    # (XML 1.0 §4.1): written the XML way it reads as "A" instead of as the bare "&" it was.
    return b"&#x" + ref[1:] + b";" if ref[:1] == b"X" else match.group()


def _is_char(ref: bytes) -> bool:
    code = int(ref[1:], 16) if ref[:1] in b"xX" else int(ref)
    return code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF


# The calendar fields of an ISO 8601 / RFC 3339 date: 2026-11-05, 20261105, 2026-11-05T09:30:00.
_ISO_FIELDS_RE = re.compile(
    r"\s*(\d{4})-?(\d{2})-?(\d{2})(?:\s*T?\s*(\d{2}):?(\d{2})(?::?(\d{2}))?)?", re.IGNORECASE)


def entry_date(entry: dict) -> datetime | None:
    """When the entry was published (else updated), in UTC; None when it names no real moment.

    feedparser's last-resort ISO 8601 reader hands its fields to mktime, which rolls
    2026-10-32 over to 1 November and 25:00 to the next day: a made-up date would put the
    item in the wrong month's issue, so a date whose own fields are out of range is no date.
    A year the calendar cannot hold (0, or 10000 once moved to UTC) is no date either.
    """
    for key in ("published", "updated"):
        # dict.get: FeedParserDict.get maps a missing updated_parsed to published_parsed, and
        # warns that it will stop doing so.
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed and _fields_in_range(dict.get(entry, key) or ""):
            try:
                year, month, day, hour, minute, second = parsed[:6]
                return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except (ValueError, OverflowError):
                continue
    return None


def _fields_in_range(text: str) -> bool:
    match = _ISO_FIELDS_RE.match(text)
    if not match:
        return True  # not ISO 8601: feedparser's RFC 822 and W3CDTF readers check their fields
    year, month, day, hour, minute, second = (int(f) if f else 0 for f in match.groups())
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return hour < 24 and minute < 60 and second <= 60  # RFC 3339 §5.6 allows a leap second
