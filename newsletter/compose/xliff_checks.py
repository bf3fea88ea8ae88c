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
    problems = []
    want, got = _code_list(unit.content), _code_list(target)
    names = {c.id: _code_name(c) for c in unit.codes}
    if sorted(want) != sorted(got):
        problems.append(f"unit {unit.id}: markup differs: the source has "
                        f"{_list(want, names)}, the target {_list(got, names)}")
    text = plain_text(target)
    for kind, found in (("numbers", _numbers), ("URLs", _urls)):
        if sorted(found(plain_text(unit.content))) != sorted(found(text)):
            problems.append(f"unit {unit.id}: {kind} differ: the source has "
                            f"{', '.join(found(plain_text(unit.content))) or 'none'}, "
                            f"the target {', '.join(found(text)) or 'none'}")
    for piece in _texts(target):
        if match := INLINE_RE.search(piece):
            problems.append(f"unit {unit.id}: markup differs: {match.group()!r} in the "
                            "target is Markdown or HTML that the source does not have")
            break
    template = _TEMPLATE_RE.search(text)
    if template and not _TEMPLATE_RE.search(plain_text(unit.content)):
        problems.append(f"unit {unit.id}: markup differs: template syntax "
                        f"{template.group()!r} in the target")
    if "\n" in text.strip() or "\r" in text:
        problems.append(f"unit {unit.id}: a line break is not allowed in the target")
    elif _BLOCK_START_RE.match(text) and not _BLOCK_START_RE.match(plain_text(unit.content)):
        problems.append(f"unit {unit.id}: markup differs: the target starts like a Markdown "
                        "heading, quote, list item or table row")
    elif unit.kind == "cell" and "|" in text:
        problems.append(f"unit {unit.id}: '|' would split the table cell")
    return problems


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
