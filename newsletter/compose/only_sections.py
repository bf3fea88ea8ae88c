"""Sections for some readers only: a Markdown heading marked `{only=geneva}` (or
`{only=geneva,lausanne}`: any of those tags) is seen only by readers with one of its tags.

The marked part runs from its heading to the next heading of the same or a higher level
(`## A {only=x}` ends at the next `#` or `##`; a marked `###` ends at the next `#`-`###`).
Only ATX headings (`#` ... `######`) outside fenced code carry markers, the same headings
sections.heading_chunks cuts sections at. The attribute is never shown to anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from newsletter.compose.audience_spec import clean_tags

_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+")
# `{name=value}` at the end of a heading, before any closing #s.
_ATTR_RE = re.compile(r"\s*\{\s*(?P<name>[A-Za-z][\w-]*)\s*=(?P<value>[^{}]*)\}\s*#*\s*$")
_TAG_RE = re.compile(r"^[^\s{}=\[\]]+(?: [^\s{}=\[\]]+)*$")
ATTRIBUTE = "only"


@dataclass(frozen=True)
class Marker:
    line: int  # 1-based, in the draft's body (after the front matter)
    level: int
    text: str  # the heading line as written
    name: str  # the attribute's name: "only", or what an editor mistyped
    tags: frozenset[str]


def markers(body: str) -> list[Marker]:
    """Every `{name=value}` heading attribute of the body, in order."""
    found, fenced = [], False
    for number, line in enumerate(body.split("\n"), 1):
        if _FENCE_RE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else _HEADING_RE.match(line)
        if heading and (attr := _ATTR_RE.search(line, heading.end())):
            found.append(Marker(number, len(heading["hashes"]), line, attr["name"],
                                clean_tags([attr["value"]])))
    return found


def used_tags(body: str) -> frozenset[str]:
    """The tags any `only` marker of the body names: they decide a reader's variant."""
    tags: set[str] = set()
    for marker in markers(body):
        if marker.name == ATTRIBUTE:
            tags |= marker.tags
    return frozenset(tags)


def marker_problems(body: str) -> list[tuple[int, str, str]]:
    """(body line, severity, message) for markers that cannot work as written."""
    problems = []
    for m in markers(body):
        if m.name != ATTRIBUTE:
            problems.append((m.line, "warning", f"heading attribute {{{m.name}=...}} is not "
                             f"known (only {{{ATTRIBUTE}=tag}}): it is shown as written"))
        elif not m.tags:
            problems.append((m.line, "error", f"{{{ATTRIBUTE}=}} names no tag: write "
                             f"{{{ATTRIBUTE}=geneva}} or {{{ATTRIBUTE}=geneva,lausanne}}"))
        elif bad := sorted(t for t in m.tags if not _TAG_RE.match(t)):
            problems.append((m.line, "error", f"{{{ATTRIBUTE}=...}}: {bad[0][:40]!r} is not "
                             "a plain tag name"))
    return problems


def variant_body(body: str, tags: frozenset[str] | None = None) -> str:
    """The body as a reader with `tags` sees it: marked parts whose tags they lack left out,
    every `only` attribute removed from its heading. tags=None keeps every part (the
    editor's view: build, check)."""
    out: list[str] = []
    stack: list[tuple[int, bool]] = []  # (heading level, visible) of the open parts
    fenced = False
    for line in body.split("\n"):
        heading = None
        if _FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced:
            heading = _HEADING_RE.match(line)
        if heading:
            level = len(heading["hashes"])
            while stack and stack[-1][0] >= level:
                stack.pop()
            visible = not stack or stack[-1][1]
            attr = _ATTR_RE.search(line, heading.end())
            if attr and attr["name"] == ATTRIBUTE:
                wanted = clean_tags([attr["value"]])
                visible = visible and (tags is None or bool(wanted & tags))
                line = line[:attr.start()].rstrip()
            stack.append((level, visible))
        if not stack or stack[-1][1]:
            out.append(line)
    return "\n".join(out)


def variant_key(reader_tags: frozenset[str], used: frozenset[str]) -> str:
    """Which variant a reader gets: the marker tags they have, sorted, comma-joined ("" for
    none). Readers with the same key see the same sections."""
    return ",".join(sorted(reader_tags & used))


def key_tags(key: str) -> frozenset[str]:
    return frozenset(t for t in key.split(",") if t)


def marker_findings(path: Path, body: str) -> list[tuple[str, str, str]]:
    """(severity, file:line, message) for marker_problems, lines counted in the draft file."""
    return [(severity, where(path, body, line), message)
            for line, severity, message in marker_problems(body)]


def where(path: Path, body: str, line: int) -> str:
    """file:line of a body line (the body is the end of the file, after the front matter)."""
    try:
        raw = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError):
        return str(path)
    offset = raw.count("\n", 0, len(raw) - len(body)) if raw.endswith(body) else 0
    return f"{path}:{line + offset}"


def parts_seen(body: str, tags: frozenset[str]) -> tuple[bool, ...]:
    """For each `only` marker, whether a reader with `tags` has one of its tags: readers with
    the same answers see the same body, whatever their variant keys."""
    return tuple(bool(m.tags & tags) for m in markers(body) if m.name == ATTRIBUTE)
