"""A draft's Markdown body cut at its headings into sections of sanitised HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass

import markdown

from newsletter.compose.word_bullets import as_markdown_lists
from newsletter.sanitize import plain_text, sanitize_html

_HEADING_RE = re.compile(r"^#{1,2}\s+(?P<title>.+?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Section:
    title: str  # plain text; "" for the introduction before the first heading
    html: str  # sanitised HTML of the section's body, heading excluded


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
