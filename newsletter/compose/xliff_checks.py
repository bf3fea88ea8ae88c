"""Whether a translator's target may replace its source: the same URLs, numbers and markup."""

from __future__ import annotations

import re
import unicodedata

from newsletter.compose.xliff_inline import INLINE_RE, Code, Ph, Span, plain_text
from newsletter.compose.xliff_segments import Unit

_NUMBER_RE = re.compile(r"\d+(?:[.,'\u00a0\u202f\u2009\u066b\u066c]\d+|\s\d{3}(?!\d))*")
_URL_RE = re.compile(r"(?:https?://|mailto:|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_BLOCK_START_RE = re.compile(r"^\s*(?:#{1,6}\s|>|[-*+]\s|\d{1,9}[.)]\s|\||([-=_*])\1\1)")
_TEMPLATE_RE = re.compile(r"\{\{|\{%|\{#")  # check refuses these in drafts too


def target_problems(unit: Unit, target: tuple | None) -> list[str]:
    """Why a target cannot replace the source: its URLs, numbers or markup differ."""
    if target is None or not plain_text(target).strip():
        return [f"unit {unit.id}: no translation"]
    source, text = plain_text(unit.content), plain_text(target)
    problems = _code_problems(unit, target)
    problems += _value_problems(source, text)
    problems += _markup_problems(target, source, text)
    problems += _shape_problems(unit.kind, source, text)
    return [f"unit {unit.id}: {problem}" for problem in problems]


def _code_problems(unit: Unit, target: tuple) -> list[str]:
    want, got = _code_list(unit.content), _code_list(target)
    if sorted(want) == sorted(got):
        return []
    names = {c.id: _code_name(c) for c in unit.codes}
    return [f"markup differs: the source has {_list(want, names)}, the target "
            f"{_list(got, names)}"]


def _value_problems(source: str, text: str) -> list[str]:
    """Numbers and URLs: a translation keeps every one of them."""
    problems = []
    for kind, found in (("numbers", _numbers), ("URLs", _urls)):
        if sorted(found(source)) != sorted(found(text)):
            problems.append(f"{kind} differ: the source has {', '.join(found(source)) or 'none'}, "
                            f"the target {', '.join(found(text)) or 'none'}")
    return problems


def _markup_problems(target: tuple, source: str, text: str) -> list[str]:
    """Markdown, HTML or template syntax typed into the target's text."""
    problems = []
    for piece in _texts(target):
        if match := INLINE_RE.search(piece):
            problems.append(f"markup differs: {match.group()!r} in the target is Markdown or "
                            "HTML that the source does not have")
            break
    template = _TEMPLATE_RE.search(text)
    if template and not _TEMPLATE_RE.search(source):
        problems.append(f"markup differs: template syntax {template.group()!r} in the target")
    return problems


def _shape_problems(kind: str, source: str, text: str) -> list[str]:
    """What would change the block the unit sits in: a line break, a block marker, a '|'."""
    if "\n" in text.strip() or "\r" in text:
        return ["a line break is not allowed in the target"]
    if _BLOCK_START_RE.match(text) and not _BLOCK_START_RE.match(source):
        return ["markup differs: the target starts like a Markdown heading, quote, list item "
                "or table row"]
    if kind == "cell" and "|" in text:
        return ["'|' would split the table cell"]
    return []


def _code_list(nodes: tuple) -> list[str]:
    found = []
    for node in nodes:
        if isinstance(node, Span):
            found += [f"pc{node.code}", *_code_list(node.content)]
        elif isinstance(node, Ph):
            found.append(f"ph{node.code}")
    return found


def _code_name(code: Code) -> str:
    kinds = {"xlf:b": "bold", "xlf:i": "italics"}
    return kinds.get(code.sub_type) or {"link": "link", "image": "image"}.get(code.type, "code")


def _list(codes: list[str], names: dict[str, str]) -> str:
    return ", ".join(f"{names.get(c[2:], 'unknown code')} {c[2:]}" for c in codes) or "none"


def _texts(nodes: tuple) -> list[str]:
    return [n for n in nodes if isinstance(n, str)] + \
        [t for n in nodes if isinstance(n, Span) for t in _texts(n.content)]


def _numbers(text: str) -> list[str]:
    """Digits as written in any script (Arabic-Indic, full-width), group separators ignored:
    "1,800", "1 800" and "١٨٠٠" are the same number."""
    return ["".join(str(unicodedata.digit(c)) for c in m if c.isdigit())
            for m in _NUMBER_RE.findall(text)]


def _urls(text: str) -> list[str]:
    return [u.rstrip(".,;:!?") for u in _URL_RE.findall(text)]
