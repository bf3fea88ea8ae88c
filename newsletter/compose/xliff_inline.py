"""Markdown inline markup as XLIFF codes: text nodes with <pc>/<ph> codes, and back."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """Inline markup a translator moves but never edits: XLIFF 2.0 <pc> (paired, around text)
    or <ph> (a placeholder). The Markdown it stands for stays on our side."""
    id: str
    kind: str  # "pc" or "ph"
    type: str  # XLIFF 2.0 type: fmt, link, image, other
    sub_type: str  # xlf:b, xlf:i, or ""
    start: str  # the Markdown before the text (pc), or all of it (ph)
    end: str = ""  # the Markdown after the text (pc)
    alt_unit: str = ""  # an image: the unit that holds its alt text


@dataclass(frozen=True)
class Span:
    code: str  # Code.id
    content: tuple  # nodes: str | Span | Ph


@dataclass(frozen=True)
class Ph:
    code: str


INLINE_RE = re.compile(
    # a heading's {only=tag} marker (only_sections.py): the translator keeps it as it is
    r"(?P<only>[ \t]*\{[ \t]*only[ \t]*=[^{}]*\}[ \t]*$)|"
    r"(?P<image>!\[(?P<alt>[^\[\]]*)\]\((?P<isrc>[^()\s]+(?:\s+\"[^\"]*\")?)\))"
    r"|(?P<link>\[(?P<ltext>[^\[\]]*(?:!\[[^\[\]]*\]\([^()]*\))?[^\[\]]*)\]"
    r"\((?P<href><[^>]*>|[^()\s]+(?:\s+\"[^\"]*\")?)\))"
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<auto><(?:https?://|mailto:)[^>\s]+>)"
    r"|(?P<html></?[A-Za-z][^<>]*>)"
    r"|(?P<strong>(?P<smark>\*\*|__)(?=\S)(?P<stext>.+?)(?<=\S)(?P=smark))"
    r"|(?P<em>(?P<emark>\*|(?<!\w)_)(?=\S)(?P<etext>.+?)(?<=\S)(?P=emark)(?!\w))"
    r"|(?P<escape>\\[\\`*_{}\[\]()#+\-.!|<>~])"
    r"|(?P<entity>&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);)")


def parse_inline(text: str, codes: list[Code], uid: str) -> tuple:
    """Markdown inline text to nodes; each piece of markup becomes a Code (appended)."""
    nodes: list = []
    pos = 0
    for match in INLINE_RE.finditer(text):
        if match.start() > pos:
            nodes.append(text[pos:match.start()])
        pos = match.end()
        cid = str(len(codes) + 1)
        if match["image"]:
            alt_unit = f"{uid}.alt{sum(1 for c in codes if c.alt_unit) + 1}" if \
                match["alt"].strip() else ""
            codes.append(Code(cid, "ph", "image", "", f"![{match['alt']}", f"]({match['isrc']})",
                              alt_unit))
            nodes.append(Ph(cid))
        elif match["link"] or match["strong"] or match["em"]:
            start, end, inner, typ, sub = _paired(match)
            codes.append(Code(cid, "pc", typ, sub, start, end))
            nodes.append(Span(cid, parse_inline(inner, codes, uid)))
        else:
            codes.append(Code(cid, "ph", "other", "", match.group()))
            nodes.append(Ph(cid))
    if pos < len(text):
        nodes.append(text[pos:])
    return tuple(nodes)


def _paired(match: re.Match) -> tuple[str, str, str, str, str]:
    if match["link"]:
        return "[", f"]({match['href']})", match["ltext"], "link", ""
    if match["strong"]:
        return match["smark"], match["smark"], match["stext"], "fmt", "xlf:b"
    return match["emark"], match["emark"], match["etext"], "fmt", "xlf:i"


def plain_text(nodes: tuple) -> str:
    """The translatable text of nodes, codes left out (for numbers, URLs and the memory)."""
    return "".join(n if isinstance(n, str) else plain_text(n.content) if isinstance(n, Span)
                   else " " for n in nodes)


def render_nodes(nodes: tuple, codes: dict[str, Code], alt: dict[str, str]) -> str:
    """Nodes (a translation) back to Markdown, each code's Markdown taken from the source."""
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Span):
            code = codes[node.code]
            out.append(code.start + render_nodes(node.content, codes, alt) + code.end)
        else:
            code = codes[node.code]
            start = f"![{alt[code.alt_unit]}" if code.alt_unit else code.start
            out.append(start + code.end)
    return "".join(out)
