"""The template's own hint text left in a draft ("Replace this paragraph with..."). The hints
are read from the template file at check time, whatever the editors wrote there: every
paragraph and heading of its body is one, so no sentence is fixed here."""

from __future__ import annotations

import re
from pathlib import Path

_CLOSING_RE = re.compile(r"^---[ \t]*$")
_HEADING_MARK_RE = re.compile(r"^#{1,6}\s+|\s+#+\s*$")
# A paragraph this short ("Thanks!", "## News") could be the editor's own words too; a long
# one (eight words or more) found inside a paragraph of the draft was left there.
_MIN_CHARS = 12
_CONTAINED_WORDS = 8


def _blocks(text: str) -> list[tuple[int, str]]:
    """(1-based line, text with whitespace collapsed) per paragraph or heading of the body
    after the front matter; lines are the file's."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = 0
    if lines and lines[0].rstrip() == "---":
        start = next((i + 1 for i in range(1, len(lines)) if _CLOSING_RE.match(lines[i])), 0)
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    first = 0
    for index in range(start, len(lines) + 1):
        line = lines[index] if index < len(lines) else ""
        is_heading = line.lstrip().startswith("#")
        if current and (not line.strip() or is_heading):
            blocks.append((first + 1, " ".join(current)))
            current = []
        if is_heading:
            blocks.append((index + 1, " ".join(_HEADING_MARK_RE.sub("", line.strip()).split())))
        elif line.strip():
            if not current:
                first = index
            current.append(" ".join(line.split()))
    return blocks


def template_hints(template: Path) -> list[str]:
    """The hint paragraphs and headings of TEMPLATE's body; none when there is no template."""
    try:
        text = template.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return []  # `newsletter new` reports a missing or broken template; check need not
    return [block for _, block in _blocks(text) if len(block) >= _MIN_CHARS]


def leftover_hints(draft_text: str, hints: list[str]) -> list[tuple[int, str]]:
    """(line, hint) for each template hint still in the draft: a paragraph or heading equal
    to it, or a paragraph that holds a long hint inside it."""
    found = []
    for line, block in _blocks(draft_text):
        for hint in hints:
            if block == hint or (len(hint.split()) >= _CONTAINED_WORDS and hint in block):
                found.append((line, hint))
                break
    return found


def hint_message(hint: str, ready: bool) -> str:
    quoted = hint if len(hint) <= 60 else hint[:57].rstrip() + "..."
    if ready:
        return (f"the template's hint text {quoted!r} is still in the draft: replace it with "
                "the issue's own words (readers would get it as written)")
    return (f"the template's hint text {quoted!r} is still here: replace it before "
            "status: ready")
