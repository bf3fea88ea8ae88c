"""Cut a draft into translation units (text with inline codes) and put translations back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.compose.translate import INTRO, source_sections
from newsletter.compose.xliff_inline import Code, parse_inline, plain_text, render_nodes


@dataclass(frozen=True)
class Unit:
    id: str
    kind: str  # subject, preheader, heading, paragraph, item, cell, alt
    section: str  # the section key (translate.INTRO or the heading text)
    content: tuple  # nodes
    codes: tuple[Code, ...]

    @property
    def translatable(self) -> bool:
        """False for a paragraph that is only an image (its alt text is a unit of its own)."""
        return bool(plain_text(self.content).strip())


@dataclass(frozen=True)
class Slot:
    unit: str


@dataclass(frozen=True)
class Document:
    units: tuple[Unit, ...]
    skeleton: tuple  # str | Slot, in order: the body with each unit's text taken out


_HEADING_RE = re.compile(r"^(?P<mark>#{1,6}[ \t]+)(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
_ITEM_RE = re.compile(r"^(?P<mark>[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+)(?P<text>\S.*)$")
_QUOTE_RE = re.compile(r"^(?P<mark>(?:>[ \t]?)+)(?P<text>.*)$")
_FENCE_RE = re.compile(r"^[ \t]*(```|~~~)")
_RULE_RE = re.compile(r"^[ \t]*(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_HTML_BLOCK_RE = re.compile(r"^[ \t]*</?(?:div|table|p|ul|ol|li|blockquote|pre|h[1-6]|hr|figure"
                            r"|section|center|details|!--)\b", re.IGNORECASE)
_TABLE_RULE_RE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")


class _Units:
    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.skeleton: list = []

    def add(self, uid: str, kind: str, section: str, text: str, *, inline: bool = True) -> None:
        """A unit for text and its slot in the skeleton; Markdown inline markup as codes."""
        codes: list[Code] = []
        content = parse_inline(text, codes, uid) if inline else (text,)
        for code in codes:
            if code.alt_unit:
                alt = code.start[2:]  # start is "![" + alt text
                self.units.append(Unit(code.alt_unit, "alt", section, (alt,), ()))
        self.units.append(Unit(uid, kind, section, content, tuple(codes)))
        self.skeleton.append(Slot(uid))


def split_document(subject: str, preheader: str, body: str) -> Document:
    """Every unit of a draft: subject, preheader, then each section's blocks in order."""
    out = _Units()
    out.add("subject", "subject", INTRO, subject, inline=False)  # headers: plain text
    if preheader:
        out.add("preheader", "preheader", INTRO, preheader, inline=False)
    out.skeleton.clear()  # the front matter is not part of the body skeleton
    sections = source_sections(body)
    first = 0 if sections and sections[0].key == INTRO and not \
        sections[0].text.startswith("#") else 1  # s0 is the introduction, if any
    for number, section in enumerate(sections, first):
        _blocks(out, f"s{number}", section.key, section.text.split("\n"))
        out.skeleton.append("\n")
    return Document(tuple(out.units), tuple(out.skeleton))


def _blocks(out: _Units, prefix: str, key: str, lines: list[str]) -> None:
    counts: dict[str, int] = {}

    def uid(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{prefix}.{kind}{counts[kind]}"

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or _RULE_RE.match(line) or _HTML_BLOCK_RE.match(line):
            out.skeleton.append(line + "\n")
        elif _FENCE_RE.match(line):
            end = next((j for j in range(i + 1, len(lines)) if _FENCE_RE.match(lines[j])),
                       len(lines) - 1)
            out.skeleton.append("\n".join(lines[i:end + 1]) + "\n")
            i = end
        elif (m := _HEADING_RE.match(line)) and m["text"]:
            _marked(out, m, uid("h"), "heading", key)
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and \
                _TABLE_RULE_RE.match(lines[i + 1]):
            i = _table(out, lines, i, uid("t"), key) - 1
        elif m := _ITEM_RE.match(line):
            i = _joined(out, lines, i, m, uid("li"), "item", key)
        elif m := _QUOTE_RE.match(line):
            i = _joined(out, lines, i, m, uid("q"), "paragraph", key)
        else:
            i = _joined(out, lines, i, None, uid("p"), "paragraph", key)
        i += 1


def _marked(out: _Units, match: re.Match, uid: str, kind: str, key: str) -> None:
    out.skeleton.append(match["mark"])
    out.add(uid, kind, key, match["text"].strip())
    out.skeleton.append("\n")


def _joined(out: _Units, lines: list[str], i: int, match: re.Match | None, uid: str,
            kind: str, key: str) -> int:
    """A paragraph, item or quote with its continuation lines, as one unit on one line
    (Markdown reads a line break inside a paragraph as a space). Returns its last line."""
    text = [match["text"] if match else lines[i].strip()]
    while i + 1 < len(lines) and lines[i + 1].strip() and not _starts_block(lines[i + 1]):
        i += 1
        text.append(_QUOTE_RE.sub(r"\g<text>", lines[i]).strip() if match and
                    match["mark"].startswith(">") else lines[i].strip())
    out.skeleton.append(match["mark"] if match else "")
    out.add(uid, kind, key, " ".join(text))
    out.skeleton.append("\n")
    return i


def _starts_block(line: str) -> bool:
    return bool(_ITEM_RE.match(line) or _HEADING_RE.match(line) or _FENCE_RE.match(line)
                or line.lstrip().startswith("|") or _RULE_RE.match(line))


def _table(out: _Units, lines: list[str], i: int, uid: str, key: str) -> int:
    """One unit per non-empty cell; the alignment row is kept as it is. Returns the line
    after the table."""
    row = 0
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        if _TABLE_RULE_RE.match(lines[i]):
            out.skeleton.append(lines[i] + "\n")
        else:
            row += 1
            out.skeleton.append("|")
            for col, cell in enumerate(_cells(lines[i]), 1):
                if cell:
                    out.skeleton.append(" ")
                    out.add(f"{uid}.r{row}.c{col}", "cell", key, cell)
                out.skeleton.append(" |")
            out.skeleton.append("\n")
        i += 1
    return i


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|")
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]


def render_body(doc: Document, targets: dict[str, tuple]) -> str:
    """The skeleton with each slot filled with its unit's translation."""
    units = {u.id: u for u in doc.units}
    alt = {uid: plain_text(nodes) for uid, nodes in targets.items() if units[uid].kind == "alt"}
    parts = [p if isinstance(p, str) else
             render_nodes(targets.get(p.unit, units[p.unit].content),
                          {c.id: c for c in units[p.unit].codes}, alt)
             for p in doc.skeleton]
    return re.sub(r"\n{3,}", "\n\n", "".join(parts)).strip() + "\n"
