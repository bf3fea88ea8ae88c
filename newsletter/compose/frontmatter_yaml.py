"""Parse front matter YAML so that one broken line does not hide the rest: a line already
reported (by frontmatter_lint) or one YAML stops at is blanked and the parse retried, so the
keys on every other line are still read and checked. Lines are the draft file's, 1-based."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

# Scanner errors whose problem_mark is where YAML gave up (the end of the front matter, the
# next key), not where the editor has to look: the context_mark is the opening quote or
# bracket. Other errors' problem_mark is the line itself.
_OPENED_AT = ("while scanning a quoted scalar", "while parsing a flow sequence",
              "while parsing a flow mapping", "while scanning a simple key")
_HINTS = {
    "mapping values are not allowed here":
        "a ': ' inside an unquoted value, or a line indented by mistake; put the value in "
        "quotes",
    "found unexpected end of stream": "a quote opened on this line is never closed",
}
_KEY_RE = re.compile(r"^(?P<key>[^\s:#\-][^:]*?)\s*:(?=\s|$)")
_PASTED_RE = re.compile("[\u201c\u201d\u2018\u2019\u00a0\u202f\u2007\u200b\u2060\ufeff\"']")
_MAX_RETRIES = 30  # each retry blanks one more line; a header is a dozen lines


@dataclass(frozen=True)
class Header:
    meta: dict
    lines: dict[str, int]  # key -> its line in the draft
    problems: tuple[tuple[int, str], ...]  # (line, "front matter: not valid YAML: ...")
    unread: frozenset[str]  # keys on or above a blanked line: their checks would mislead


def parse_header(header: str, loader: type, *, first_line: int = 2,
                 skip: frozenset[int] = frozenset()) -> Header:
    """meta, key lines and YAML problems of HEADER, whose first line is line FIRST_LINE of the
    draft; the lines in SKIP (draft line numbers) are reported already and left out."""
    rows = header.split("\n")
    blank = {n - first_line for n in skip if 0 <= n - first_line < len(rows)}
    problems: list[tuple[int, str]] = []
    for _ in range(_MAX_RETRIES):
        text = "\n".join("" if i in blank else row for i, row in enumerate(rows))
        try:
            node = yaml.compose(text, Loader=loader)
            meta = yaml.load(text, Loader=loader) if node else {}
            break
        except yaml.YAMLError as exc:
            row = _error_row(exc, len(rows))
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            hint = _HINTS.get(reason, "")
            problems.append((row + first_line, "front matter: not valid YAML: "
                             f"{reason}{f' ({hint})' if hint else ''}"))
            if row in blank:
                return Header({}, {}, tuple(problems), _all_keys(rows))
            blank.add(row)
    else:
        return Header({}, {}, tuple(problems), _all_keys(rows))
    if not isinstance(meta, dict) or not isinstance(node, yaml.MappingNode):
        if meta in (None, {}) and not problems:
            return Header({}, {}, (), frozenset())
        problems.append((first_line, "front matter: must be 'key: value' lines"))
        return Header({}, {}, tuple(problems), _all_keys(rows))
    lines = {str(k.value): k.start_mark.line + first_line for k, _ in node.value}
    return Header(meta, lines, tuple(problems), _unread(rows, blank, meta, lines, first_line))


def _error_row(exc: yaml.YAMLError, count: int) -> int:
    """The 0-based header row to blame for a YAML error."""
    context = getattr(exc, "context", None)
    mark = getattr(exc, "context_mark", None) if context in _OPENED_AT else None
    mark = mark or getattr(exc, "problem_mark", None)
    return min(mark.line, count - 1) if mark is not None else 0


def _all_keys(rows: list[str]) -> frozenset[str]:
    return frozenset(_bare(m["key"]) for row in rows if (m := _KEY_RE.match(row.lstrip())))


def _unread(rows: list[str], blank: set[int], meta: dict, lines: dict[str, int],
            first_line: int) -> frozenset[str]:
    """Keys written on a blanked line, and keys whose value runs over one (the line after
    `feeds:` with a tab in it): both are reported at that line already."""
    unread = set()
    starts = sorted((line - first_line, key) for key, line in lines.items())
    for row in blank:
        match = _KEY_RE.match(rows[row].lstrip())
        if match:
            unread.add(_bare(match["key"]))
        above = [key for start, key in starts if start < row][-1:]
        # A key whose value was all on its own line is not owned by the blanked line below
        # it; one left without a value (feeds:, then a broken list item) is.
        if above and (not match or meta.get(above[0]) is None):
            unread.add(above[0])
    return frozenset(unread)


def _bare(key: str) -> str:
    """A key as the editor meant it: without pasted curly quotes or odd spaces."""
    return _PASTED_RE.sub("", key).strip()
