"""Bullets pasted from Word ('•' and a tab) are list items: one rule, used by the Markdown
conversion (sections.markdown_to_html) and by check's warning, so the two never disagree."""

from __future__ import annotations

import re

# A bullet glyph at the start of a line (after any indent), then a tab or spaces, then text.
# Word writes '•', '◦' and '▪' for its three levels; '·' comes from pasted PDFs and web pages.
_BULLET_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<bullet>[•·◦▪])[\t ]+(?=\S)")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


def _bullet_lines(lines: list[str]) -> list[re.Match[str] | None]:
    """The bullet match of each line, None for a line that is no bullet or is fenced code."""
    found: list[re.Match[str] | None] = []
    fenced = False
    for line in lines:
        if _FENCE_RE.match(line):
            fenced = not fenced
        found.append(None if fenced else _BULLET_RE.match(line))
    return found


def bullet_runs(lines: list[str]) -> list[tuple[int, int, str]]:
    """(index of the first line, number of lines, the bullet glyph) per run of consecutive
    Word-style bullet lines, outside fenced code."""
    runs: list[tuple[int, int, str]] = []
    matches = _bullet_lines(lines)
    for index, match in enumerate(matches):
        if match is None:
            continue
        if index and matches[index - 1] is not None:
            first, count, glyph = runs[-1]
            runs[-1] = (first, count + 1, glyph)
        else:
            runs.append((index, 1, match["bullet"]))
    return runs


def as_markdown_lists(text: str) -> str:
    """Word-style bullet lines become Markdown '- ' items. A list needs a blank line before it
    in Markdown, which a paste from Word does not have, so one is put there (and after it);
    nesting follows the indent, in Markdown's steps of four spaces (a tab is one step)."""
    lines = text.split("\n")
    matches = _bullet_lines(lines)
    out: list[str] = []
    depth = 0
    for index, (line, match) in enumerate(zip(lines, matches, strict=True)):
        if match is None:
            if index and matches[index - 1] is not None and line.strip():
                out.append("")  # else Markdown reads the line as more of the last item
            out.append(line)
            continue
        starts_run = not index or matches[index - 1] is None
        if starts_run and index and lines[index - 1].strip():
            out.append("")
        # A run starts at the top level (four spaces there would be a code block) and goes
        # at most one level deeper per line, as Markdown nests.
        wanted = (len(match["indent"].expandtabs(4)) + 3) // 4
        depth = 0 if starts_run else min(wanted, depth + 1)
        out.append(" " * 4 * depth + "- " + line[match.end():])
    return "\n".join(out)
