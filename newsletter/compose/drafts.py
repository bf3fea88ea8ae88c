"""Load a Markdown draft: validate its front matter, convert and sanitise its body into sections."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from newsletter.compose.audience_spec import Audience
from newsletter.compose.draft_fields import check_fields
from newsletter.compose.frontmatter_lint import lint_draft
from newsletter.compose.frontmatter_yaml import Header, parse_header
from newsletter.compose.only_sections import variant_body
from newsletter.compose.sections import Section, split_sections
from newsletter.compose.signoff import Approval
from newsletter.errors import DraftError, InputError

ISSUE_RE = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
_DRAFT_NAME_RE = re.compile(
    r"^(?P<issue>\d{4}-\d{2})(?:\.(?P<lang>[a-z]{2,3}(?:-[A-Za-z]{2,4})?))?\.md$")


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
    fields = check_fields(header.meta, header.lines, problems, timezone, header.unread)
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


def split_front_matter(path: Path, raw: str) -> tuple[dict, dict[str, int], str]:
    """meta, key lines and body; the first YAML problem is raised with its line."""
    header, body = _front_matter(path, raw, frozenset())
    if header.problems:
        line, problem = header.problems[0]
        raise DraftError(f"{path}:{line}", [problem])
    return header.meta, header.lines, body


def content_hash(path: Path) -> str:
    """A short hash of a draft's body (after the front matter): a translation records the
    default edition's hash in `translated_from`, so `check` can tell when it is out of date."""
    text = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    body = text.split("\n---", 1)[1] if "\n---" in text else text
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
