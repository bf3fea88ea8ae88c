"""Load a Markdown draft: validate its front matter, convert and sanitise its body into sections."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import markdown
import yaml

from newsletter.compose.audience_spec import Audience, parse_audience
from newsletter.compose.frontmatter_lint import lint_draft
from newsletter.compose.frontmatter_yaml import Header, parse_header
from newsletter.compose.only_sections import variant_body
from newsletter.compose.signoff import Approval, parse_approval
from newsletter.compose.word_bullets import as_markdown_lists
from newsletter.errors import DraftError, InputError
from newsletter.headers import header_text_problem
from newsletter.sanitize import plain_text, sanitize_html

ISSUE_RE = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
_DRAFT_NAME_RE = re.compile(
    r"^(?P<issue>\d{4}-\d{2})(?:\.(?P<lang>[a-z]{2,3}(?:-[A-Za-z]{2,4})?))?\.md$")
_HEADING_RE = re.compile(r"^#{1,2}\s+(?P<title>.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
STATUSES = ("draft", "ready")
_FIELDS = {
    "subject": str, "preheader": str, "status": str, "send_at": str,
    "feeds": list, "exclude": list, "translated_from": str,
    "audience": dict, "approved_by": str,  # read by audience.py and signoff.py (a mapping too)
}


@dataclass(frozen=True)
class Section:
    title: str  # plain text; "" for the introduction before the first heading
    html: str  # sanitised HTML of the section's body, heading excluded


@dataclass(frozen=True)
class Draft:
    path: Path
    issue: str  # "YYYY-MM"
    language: str
    subject: str
    preheader: str
    status: str
    send_at: datetime | None  # aware; None means "when ready"
    feeds: tuple[str, ...] | None  # None: every configured feed
    exclude: tuple[str, ...]
    sections: tuple[Section, ...]
    body: str  # the Markdown source, kept for `check`
    translated_from: str = ""  # the old form: one content_hash of the default's body
    # The new form: (section key, version) per section of the default edition (translate.py).
    translated_sections: tuple[tuple[str, str], ...] = ()
    audience: Audience | None = None  # who gets this edition; None: every reader of it
    approved_by: Approval | None = None  # the sign-off ([review] required = true)


class _StringTimestamps(yaml.SafeLoader):
    """YAML without implicit timestamps: send_at is parsed by us, one way, with a clear error."""


_StringTimestamps.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def draft_path(issues_dir: Path, issue: str, language: str = "",
               default_language: str = "") -> Path:
    """Where the draft for ISSUE (and LANGUAGE, when not the default) lives."""
    check_issue_id(issue)
    suffix = f".{language}" if language and language != default_language else ""
    return issues_dir / f"{issue}{suffix}.md"


def check_issue_id(issue: str) -> str:
    if not ISSUE_RE.match(issue):
        raise InputError(f"issue must look like YYYY-MM (e.g. 2026-12), not {issue!r}")
    return issue


def load_draft(path: Path, *, timezone: ZoneInfo, default_language: str = "en") -> Draft:
    """Parse a draft file; raise DraftError listing every problem found."""
    match = _DRAFT_NAME_RE.match(path.name)
    if not match or not ISSUE_RE.match(match["issue"]):
        raise DraftError(str(path), ["file name must be YYYY-MM.md or YYYY-MM.LANG.md"])
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DraftError(str(path), ["no such draft (create it with `newsletter new`)"]) from exc
    # The line scan runs first and names every pasted-in trap; YAML then reads the rest.
    linted = lint_draft(data)
    raw = linted.text
    if linted.fatal:
        raise DraftError(str(path), [p.message for p in linted.problems])
    if "\x00" in raw:
        raise DraftError(str(path), ["contains a NUL byte"])
    lint_errors = [p for p in linted.problems if p.severity == "error"]
    header, body = _front_matter(path, raw, frozenset(p.line for p in lint_errors))
    problems: list[str] = []
    fields = _check_fields(header.meta, header.lines, problems, timezone, header.unread)
    found = [(p.line, p.message if p.line == 0 else p.text()) for p in lint_errors]
    found += [(line, f"line {line}: {text}") for line, text in header.problems]
    found += [(_line_of(text), text) for text in problems]
    problems = [text for _, text in sorted(found, key=lambda pair: pair[0])]
    draft = Draft(
        path=path,
        issue=match["issue"],
        language=(match["lang"] or default_language).lower(),
        subject=fields.get("subject", ""),
        preheader=fields.get("preheader", ""),
        status=fields.get("status", "draft"),
        send_at=fields.get("send_at"),
        feeds=tuple(fields["feeds"]) if "feeds" in fields else None,
        exclude=tuple(fields.get("exclude", ())),
        # {only=tag} markers stripped, every part kept: the editor's view (only_sections.py)
        sections=split_sections(variant_body(body)),
        body=body,
        translated_from=fields.get("translated_from", ""),
        translated_sections=fields.get("translated_sections", ()),
        audience=fields.get("audience"),
        approved_by=fields.get("approved_by"),
    )
    if len(problems) == 1 and len(header.problems) == 1:  # one YAML error: FILE:LINE, as ever
        raise DraftError(f"{path}:{header.problems[0][0]}", [header.problems[0][1]])
    if problems:
        raise DraftError(str(path), problems)
    return draft


def _line_of(problem: str) -> int:
    """The line a `line N: ...` problem names; 0 (listed first) for one without a line."""
    match = re.match(r"line (\d+): ", problem)
    return int(match[1]) if match else 0


def _front_matter(path: Path, raw: str, skip: frozenset[int]) -> tuple[Header, str]:
    """The front matter read around the lines in SKIP (reported already), and the body."""
    text = raw.replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise DraftError(f"{path}:1", ["front matter: the draft must start with a '---' line"])
    end = re.search(r"^---[ \t]*$", text[4:], re.MULTILINE)
    if end is None:
        raise DraftError(f"{path}:1", ["front matter: no closing '---' line"])
    header = parse_header(text[4:4 + end.start()], _StringTimestamps, first_line=2, skip=skip)
    return header, text[4 + end.end():].lstrip("\n")


def _split_front_matter(path: Path, raw: str) -> tuple[dict, dict[str, int], str]:
    """meta, key lines and body; the first YAML problem is raised with its line."""
    header, body = _front_matter(path, raw, frozenset())
    if header.problems:
        line, problem = header.problems[0]
        raise DraftError(f"{path}:{line}", [problem])
    return header.meta, header.lines, body


def _check_fields(meta: dict, lines: dict[str, int], problems: list[str],
                  timezone: ZoneInfo, unread: frozenset[str] = frozenset()) -> dict:
    def problem(key: str, message: str) -> None:
        if key in unread:  # its line could not be read: reported there already
            return
        problems.append(f"line {lines.get(key, 1)}: front matter: '{key}' {message}"
                        if key in lines else f"front matter: '{key}' {message}")

    fields: dict = {}
    for key, value in meta.items():
        expected = _FIELDS.get(str(key))
        if expected is None:
            problem(str(key), f"is not a known key (known: {', '.join(_FIELDS)})")
        elif value is None and key in ("preheader", "send_at", "translated_from", "audience",
                                       "approved_by"):
            continue
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
        elif not isinstance(value, expected):
            problem(key, f"must be {'a list' if expected is list else 'text'}, "
                         f"not {type(value).__name__}")
        elif expected is list and not all(isinstance(v, str) for v in value):
            problem(key, "must be a list of names or links")
        elif expected is str and ("\n" in value.strip() or "\r" in value):
            problem(key, "must be on one line")
        elif key in _INBOX_LINES and (trouble := header_text_problem(value.strip())):
            # .strip(): a '>' block ends with the newline YAML adds; it is not in the text
            problem(key, trouble)
        else:
            fields[key] = value.strip() if expected is str else value
    if "subject" not in meta:
        problem("subject", "is missing")
    elif fields.get("subject") == "":
        problem("subject", "is empty")
    status = fields.get("status", "draft")
    if status not in STATUSES:
        problem("status", f"must be one of {', '.join(STATUSES)}, not {status!r}")
    if "send_at" in fields:
        try:
            fields["send_at"] = parse_send_at(fields["send_at"], timezone)
        except ValueError:
            problem("send_at", f"must be an ISO 8601 date or date-time, not "
                               f"{fields['send_at']!r}: write it as send_at: 2027-01-06T09:00 "
                               f"(a time without an offset is in {timezone.key}; add one, "
                               f"as in 2027-01-06T09:00+01:00, for another zone)")
            del fields["send_at"]
    return fields


_VERSION_RE = re.compile(r"^[0-9a-f]{12}$")


def _check_translated_sections(value: dict, problem, fields: dict) -> None:  # noqa: ANN001
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


# The subject is a header and the preheader the line an inbox shows after it. Refused here,
# with the draft's file and line, by the same rule message.py applies (newsletter.headers),
# rather than when the first message is built, after the edition is frozen.
_INBOX_LINES = ("subject", "preheader")


def parse_send_at(value: str, timezone: ZoneInfo) -> datetime:
    """A date means midnight; a time without an offset is in the configured zone."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        moment = datetime.combine(date.fromisoformat(value), time())
    else:
        moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone)


def heading_chunks(body: str, *, keep_heading: bool = False) -> list[tuple[str, list[str]]]:
    """(heading title, lines) cut at level-1 and level-2 headings outside fenced code; the
    first chunk, before any heading, has the title "". keep_heading keeps each heading line
    as the first line of its chunk."""
    chunks: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in body.split("\n"):
        if _FENCE_RE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING_RE.match(line)
        if heading:
            chunks.append((heading["title"], [line] if keep_heading else []))
        else:
            chunks[-1][1].append(line)
    return chunks


def split_sections(body: str) -> tuple[Section, ...]:
    """Split the body at level-1 and level-2 headings; each becomes one section of the email."""
    chunks = heading_chunks(body)
    sections = []
    for title, lines in chunks:
        text = "\n".join(lines).strip()
        if title or text:
            sections.append(Section(title=_inline_text(title), html=markdown_to_html(text)))
    return tuple(sections)


def markdown_to_html(text: str) -> str:
    """Markdown to sanitised HTML. Raw HTML in the draft goes through the same allowlist."""
    # fenced_code: split_sections already treats ``` blocks as code, so Markdown must too.
    # Word-style bullets ('•' and a tab) are list items: newsletter.word_bullets.
    html = markdown.markdown(as_markdown_lists(text),
                             extensions=["tables", "sane_lists", "fenced_code"],
                             output_format="html")
    return sanitize_html(html)


def _inline_text(title: str) -> str:
    return plain_text(markdown.markdown(title)) if title else ""


def content_hash(path: Path) -> str:
    """A short hash of a draft's body (after the front matter): a translation records the
    default edition's hash in `translated_from`, so `check` can tell when it is out of date."""
    text = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    body = text.split("\n---", 1)[1] if "\n---" in text else text
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
