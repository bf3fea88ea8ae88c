"""Read the editors' subscriber CSV files: validate, normalise and merge rows into Subscribers."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from newsletter.audience.csv_export import unguard_cell
from newsletter.audience.csv_rows import FileScan, checked_scan, open_rows
from newsletter.errors import InputError
from newsletter.headers import clean_header_text, header_text_problem
from newsletter.model import Subscriber
from newsletter.sanitize import clean_line

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TAG_SEPARATORS = re.compile(r"[;,|]")
_COLUMNS = {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "name": ("name", "full name", "display name"),
    "language": ("language", "lang", "locale"),
    "tags": ("tags", "tag", "groups"),
}
MAX_NAME = 200
STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class Rejected:
    where: str  # "file:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class ParsedList:
    subscribers: tuple[Subscriber, ...]
    rejected: tuple[Rejected, ...]
    merged: int  # rows that repeated an address already read
    notes: tuple[str, ...] = ()  # "file:line: ..." for each merge: which line's data won
    lines: tuple[int, ...] = ()  # the line each of subscribers was read from (the kept one)


def normalise_address(raw: str) -> str:
    """Syntax check (no DNS) and normal form: domain lower-cased and in ASCII (IDNA)."""
    value = raw.strip()
    if value.startswith(_FORMULA_START):
        raise ValueError(f"{value[:40]!r} looks like a spreadsheet formula, not an address")
    if _CONTROL_RE.search(value):
        raise ValueError(f"{value[:40]!r} contains a control character")
    address = _plain_address(value) or _validated_address(value)
    # What the message builder refuses in a header (compose.message: an RFC 2047 encoded
    # word is valid atext, and a client would decode it) is no address we can ever mail.
    if problem := header_text_problem(address):
        raise ValueError(f"{value[:60]!r} is not an address we can mail: it {problem}")
    return address


def _validated_address(value: str) -> str:
    try:
        # strict: validate_email checks RFC 5321 4.5.3.1.1's 64-octet local part only then
        # (a longer one passed, and relays refuse it); it adds no other rule.
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False,
                                strict=True)
    except EmailNotValidError as exc:
        raise ValueError(f"{value[:60]!r} is not a valid address: {exc}") from exc
    if result.ascii_email is None:  # allow_smtputf8=False: validate_email refused it already
        raise ValueError(f"{value[:60]!r} is not a valid address: it needs SMTPUTF8")
    return result.ascii_email


# Most of a big import's time was validate_email's domain check (UTS #46 per character), the
# same for every reader at one domain. A plain ASCII dot-atom local part at an ASCII domain
# already checked gives validate_email's result without it; anything else (quotes, Unicode,
# IDNA, RFC 2142 role names it lower-cases, lengths near the limits) takes the full check.
# tests/audience/test_address_fast_path.py compares the two on generated addresses.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _plain_address(value: str) -> str | None:
    """validate_email's ascii_email for a plain address, or None: ask validate_email."""
    local, at, domain = value.partition("@")
    if not at or len(local) > 64 or len(value) > 250 or not _PLAIN_LOCAL.fullmatch(local) \
            or local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    ascii_domain = _checked_domain(domain)
    return f"{local}@{ascii_domain}" if ascii_domain else None


@functools.lru_cache(maxsize=1 << 16)
def _checked_domain(domain: str) -> str | None:
    """The domain as validate_email normalises it, if it is a valid ASCII one (else None)."""
    try:
        result = validate_email("a@" + domain, check_deliverability=False,
                                allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return result.ascii_domain if result.domain == result.ascii_domain else None


def clean_name(raw: str) -> str:
    """Header-safe text (newsletter.headers: one line, no control, bidi or invisible
    characters, no RFC 2047 encoded words), bounded length."""
    name = clean_header_text(unguard_cell(raw))
    if problem := header_text_problem(name):
        raise ValueError(f"name {problem}")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")
    return name


# A list has few distinct language and tag cells ("fr", "news;events"): each is cleaned once.
@functools.lru_cache(maxsize=4096)
def clean_language(raw: str, default: str) -> str:
    value = raw.strip().lower().replace("_", "-")
    if not value:
        return default
    if value in _language_names():  # "English", "français", "العربية": spreadsheets say names
        return _language_names()[value]
    if not _LANGUAGE_RE.match(value):
        raise ValueError(f"language {raw.strip()[:20]!r} is not a language code like 'en' or 'fr'")
    return value


@functools.cache
def _language_names() -> dict[str, str]:
    """Each of the six languages' names, in each of them and in English (CLDR via Babel),
    case-folded: 'english', 'anglais', 'inglés', 'français', 'french', '中文', ..."""
    from babel import Locale

    names: dict[str, str] = {}
    codes = ("ar", "en", "es", "fr", "ru", "zh")
    for code in codes:
        for shown_in in codes:
            name = Locale(shown_in).languages.get(code, "")
            if name:
                names[name.casefold()] = code
    return names


@functools.lru_cache(maxsize=4096)
def clean_tags(raw: str) -> tuple[str, ...]:
    tags = (clean_line(t).strip().lower() for t in _TAG_SEPARATORS.split(unguard_cell(raw)))
    return tuple(sorted({t for t in tags if t}))


def make_subscriber(email: str, name: str = "", language: str = "", tags: str = "", *,
                    default_language: str = "en") -> Subscriber:
    """Validate one subscriber's fields; ValueError says what is wrong."""
    return Subscriber(normalise_address(email), clean_name(name),
                      clean_language(language, default_language), clean_tags(tags))


def read_csv(path: Path, *, default_language: str = "en") -> ParsedList:
    """Parse a CSV (UTF-8 with or without BOM, or an Excel export in cp1252; , ; or tab), the
    whole file in memory (the importer streams it instead: audience.importing)."""
    by_address: dict[str, tuple[int, Subscriber]] = {}
    rejected: list[Rejected] = []
    notes: list[str] = []
    for item in iter_csv(path, checked_scan(path), default_language=default_language):
        if isinstance(item, Rejected):
            rejected.append(item)
            continue
        line, sub = item
        key = sub.email.lower()
        if key in by_address:
            first_line, first = by_address[key]
            merged, note = merge_duplicate(path, first_line, first, line, sub)
            by_address[key] = (first_line, merged)
            notes.append(note)
        else:
            by_address[key] = (line, sub)
    return ParsedList(tuple(s for _, s in by_address.values()), tuple(rejected), len(notes),
                      tuple(notes), tuple(line for line, _ in by_address.values()))


def merge_duplicate(path: str | Path, first_line: int, first: Subscriber, line: int,
                    sub: Subscriber) -> tuple[Subscriber, str]:
    """A later row repeating an address: the first row is kept, with the tags of both and this
    row's name if the first had none. Returns the merged subscriber and the note saying so."""
    merged = replace(first, name=first.name or sub.name,
                     tags=tuple(sorted(set(first.tags) | set(sub.tags))))
    same = "" if sub.email == first.email else f" (as {sub.email})"
    return merged, (f"{path}:{line}: {first.email}{same} is also on line {first_line}: "
                    f"line {first_line} is kept, with the tags of both"
                    + ("" if first.name else " and this line's name"))


@dataclass(frozen=True)
class CsvLayout:
    """What a file's header says: its width, which column holds each field, the delimiter."""

    header: tuple[str, ...]
    columns: dict[str, int]
    delimiter: str


@contextmanager
def open_csv(path: Path, found: FileScan
             ) -> Iterator[tuple[CsvLayout, Iterator[tuple[int, list[str]]]]]:
    """A scanned file's layout (from its header line) and its rows after the header, blank
    rows left out, as (line, cells): read_row turns one into a Subscriber or a Rejected."""
    with open_rows(path, found) as (dialect, rows):
        header = next(rows, (1, None))[1]
        if header is None:
            raise InputError("empty file; expected a header line with an 'email' column",
                             where=str(path))
        layout = CsvLayout(tuple(header), _map_columns(path, header), dialect.delimiter)
        yield layout, ((line, row) for line, row in rows if any(c.strip() for c in row))


def read_row(path: Path, layout: CsvLayout, line: int, row: list[str], *,
             default_language: str = "en") -> tuple[int, Subscriber] | Rejected:
    """One non-blank row of open_csv: validated, or rejected with file:line and the reason."""
    width = len(layout.header)
    if any(cell.strip() for cell in row[width:]):
        # Usually a name with an unquoted delimiter: every later cell has shifted.
        return Rejected(f"{path}:{line}", f"{len(row)} fields, but the header has {width} "
                        f"(quote a field that contains {layout.delimiter!r})")
    cells = {key: (row[i] if i < len(row) else "") for key, i in layout.columns.items()}
    try:
        return line, make_subscriber(cells.get("email", ""), cells.get("name", ""),
                                     cells.get("language", ""), cells.get("tags", ""),
                                     default_language=default_language)
    except ValueError as exc:
        return Rejected(f"{path}:{line}", str(exc))


def iter_csv(path: Path, found: FileScan, *,
             default_language: str = "en") -> Iterator[tuple[int, Subscriber] | Rejected]:
    """Each row of a scanned file in order, as (line, Subscriber) or Rejected; blank rows are
    left out and duplicates are not merged (the caller keeps what it has read)."""
    with open_csv(path, found) as (layout, rows):
        for line, row in rows:
            yield read_row(path, layout, line, row, default_language=default_language)


def _map_columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    columns = {}
    for key, aliases in _COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases:
                columns[key] = i
                break
    if "email" not in columns:
        raise InputError(f"line 1: no 'email' column in the header ({', '.join(header)[:80]})",
                         where=str(path))
    return columns
