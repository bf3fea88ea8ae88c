"""`newsletter check`: every problem with an issue at once, each naming its file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.compose.a11y import reading_problems
from newsletter.compose.check_links import Links, links_in, stripped_constructs, unreachable
from newsletter.compose.drafts import Draft
from newsletter.compose.frontmatter_lint import lint_draft
from newsletter.compose.only_sections import marker_findings
from newsletter.compose.parts import html_wire_size
from newsletter.compose.personalise import KNOWN, placeholder_lookalikes
from newsletter.compose.snapshot import snapshot_path
from newsletter.compose.template_hints import hint_message, leftover_hints, template_hints
from newsletter.model import Edition
from newsletter.netguard import Resolver, system_resolver

GMAIL_CLIP_BYTES = 102 * 1024
HTML_LIMIT_BYTES = 100 * 1024  # a margin below Gmail's clip for headers and personal values
SUBJECT_WARN_CHARS = 78
_TEMPLATE_SYNTAX_RE = re.compile(r"\{\{|\{%|\{#")


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" or "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


@dataclass
class _Found:
    """The draft and its snapshot as read once, and the problems found so far, in order."""

    path: Path
    raw: str
    snap_file: Path
    snap_raw: str
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def read(cls, draft: Draft) -> _Found:
        raw = draft.path.read_text(encoding="utf-8-sig") if draft.path.exists() else ""
        snap_file = snapshot_path(draft.path)
        snap_raw = snap_file.read_text(encoding="utf-8") if snap_file.exists() else ""
        return cls(draft.path, raw, snap_file, snap_raw)

    def add(self, severity: str, needle: str, message: str) -> None:
        """A problem at the draft line holding NEEDLE; a link or image that is not in the
        draft came from a feed item: point at the snapshot, where the editor fixes it."""
        where = locate(self.path, self.raw, needle)
        if where == str(self.path) and needle and needle in self.snap_raw:
            where = locate(self.snap_file, self.snap_raw, needle)
        self.problems.append(Problem(severity, where, message))

    def at(self, severity: str, path: Path, line: int, message: str) -> None:
        self.problems.append(Problem(severity, f"{path}:{line}", message))


def check_issue(draft: Draft, edition: Edition, *, item_count: int,
                resolve: Resolver = system_resolver) -> list[Problem]:
    """Problems in the rendered edition, pointed back at the draft line where possible."""
    found = _Found.read(draft)
    _front_matter_warnings(found, draft)
    _draft_text_problems(found, draft)
    for line_no, (severity, message) in stripped_constructs(found.raw):
        found.at(severity, draft.path, line_no, message)
    # {only=tag} heading markers that cannot work as written (newsletter.only_sections)
    found.problems += [Problem(*f) for f in marker_findings(draft.path, draft.body)]
    _link_problems(found, links_in(edition.html), resolve)
    for severity, needle, message in reading_problems(edition.html):
        found.add(severity, needle, message)
    size, wire = len(edition.html.encode("utf-8")), html_wire_size(edition.html)
    if max(size, wire) > HTML_LIMIT_BYTES:
        found.add("error", "", f"HTML is {size / 1024:.0f} KB after inlining, "
                  f"{wire / 1024:.0f} KB on the wire; Gmail clips messages over "
                  f"{GMAIL_CLIP_BYTES // 1024} KB (keep it under {HTML_LIMIT_BYTES // 1024} KB)")
    if item_count == 0:
        found.add("warning", "feeds:", "no feed items: run `newsletter pull` or check the feeds")
    return found.problems


def _front_matter_warnings(found: _Found, draft: Draft) -> None:
    if not draft.preheader:
        found.add("warning", "subject:", "front matter: 'preheader' is empty; inboxes will "
                  "show the first words of the body instead")
    if len(draft.subject) > SUBJECT_WARN_CHARS:
        found.add("warning", "subject:", f"subject is {len(draft.subject)} characters; "
                  f"inboxes cut it near {SUBJECT_WARN_CHARS // 2}-{SUBJECT_WARN_CHARS}")
    if draft.status != "ready":
        found.add("warning", "status:", "status is 'draft': `send` skips it until it is "
                  "'ready'")


def _draft_text_problems(found: _Found, draft: Draft) -> None:
    """What the draft's text holds that does not belong in it: the line scan's findings,
    the template's hints left in, template syntax, look-alikes of per-reader values."""
    # What the line scan found that does not stop the draft loading (Word bullets, ...).
    if draft.path.exists():
        for p in lint_draft(draft.path.read_bytes()).problems:
            found.at(p.severity, draft.path, p.line, p.message)
    # The template's hints are the template file's paragraphs, read now (template_hints.py).
    ready = draft.status == "ready"
    hints = template_hints(draft.path.parent / "_template.md")
    for line_no, hint in leftover_hints(found.raw, hints):
        found.at("error" if ready else "warning", draft.path, line_no, hint_message(hint, ready))
    for match in _TEMPLATE_SYNTAX_RE.finditer(found.raw):
        line_text = found.raw[match.start():].split("\n", 1)[0]
        found.add("error", line_text, f"template syntax {match.group()!r} is sent literally: "
                  "drafts are never templates")
    # Per-reader values go only where the template puts them; look-alikes are sent broken.
    for line_no, text in placeholder_lookalikes(found.raw):
        found.at("error", draft.path, line_no, f"{text} is never filled in: a draft cannot "
                 "place a reader's name or link (the template does); it is sent as text")
    for line_no, text in placeholder_lookalikes(found.snap_raw):
        found.at("warning", found.snap_file, line_no, f"{text} in a feed item is sent as "
                 "text, never filled in with a reader's name or link")


def _link_problems(found: _Found, parser: Links, resolve: Resolver) -> None:
    for href in parser.links:
        if not href:
            continue  # the sanitiser removed an unsafe URL: reported above at its line
        if not href.startswith(("https://", "http://", "mailto:")) and href not in KNOWN:
            found.add("error", href or "]()", f"link {href!r} is not an absolute http(s) URL")
    for src, alt in parser.images:
        if alt is None or not alt.strip():
            found.add("error", src, f"image {src!r} has no alt text")
        if not src.startswith(("https://", "http://")):
            found.add("error", src, f"image {src!r} is not an absolute http(s) URL")
    for severity, url, message in unreachable(parser, found.raw + found.snap_raw, resolve):
        found.add(severity, url, message)


def locate(path: Path, raw: str, needle: str) -> str:
    """PATH:LINE of the first line holding NEEDLE; PATH alone when it is not there."""
    if needle and (index := raw.find(needle)) >= 0:
        return f"{path}:{raw.count(chr(10), 0, index) + 1}"
    return str(path)
