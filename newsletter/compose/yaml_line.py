"""One front-matter line as YAML reads it: its key, where its value starts, which columns
are quoted; and the pasted characters that look like something else (frontmatter_lint)."""

from __future__ import annotations

import re
import unicodedata

# Spaces that look like a space but are not one to YAML (U+00A0 from Word, U+202F the narrow
# one French typography uses, U+2007) and characters that show as nothing at all.
LOOKALIKE_SPACES = {"\u00a0": "a non-breaking space", "\u202f": "a narrow non-breaking space",
                    "\u2007": "a figure space"}
INVISIBLE = {"\u200b": "a zero-width space", "\u2060": "a word joiner",
             "\ufeff": "a zero-width no-break space (a BOM inside the text)"}
CURLY = {"\u201c": "a curly quote “", "\u201d": "a curly quote ”", "\u2018": "a curly quote ‘",
         "\u2019": "a curly quote ’", "\u201e": "a curly quote „", "\u201a": "a curly quote ‚"}
_KEY_RE = re.compile(r"^(?P<key>[^\s:#\-\[\]{},][^:]*?)[ \t\u00a0\u202f]*:(?=[\s\u00a0\u202f]|$)")


def char_name(char: str) -> str:
    label = LOOKALIKE_SPACES.get(char) or INVISIBLE.get(char) or CURLY.get(char)
    return f"{label or unicodedata.name(char, 'a character')} (U+{ord(char):04X})"


def _clean_key(key: str) -> str:
    return "".join(c for c in key if c not in LOOKALIKE_SPACES and c not in INVISIBLE
                   and c not in CURLY).strip()


def key_span(line: str) -> tuple[str, int, int]:
    """(key, column after the key, column after its colon) of a `key: value` line, the key
    "quoted" or plain; ("", 0, 0) for a line without a key."""
    indent = len(line) - len(line.lstrip(" "))
    if line[indent:indent + 1] in ("\"", "'"):
        close = _closing_quote(line, indent)
        rest = line[close + 1:]
        after = close + 1 + len(rest) - len(rest.lstrip(" "))
        if line[after:after + 1] == ":" and (after + 1 == len(line) or line[after + 1].isspace()):
            return _clean_key(line[indent + 1:close]), close + 1, after + 1
        return "", 0, 0
    match = _KEY_RE.match(line[indent:])
    if not match:
        return "", 0, 0
    return _clean_key(match["key"]), indent + match.end("key"), indent + match.end()


def value_start(line: str, colon_end: int) -> int:
    """Column (0-based) where the value after `key:` starts; len(line) when there is none.
    Without a key (a list item or a continuation line) the first character that is not a
    space or a '- ' marker counts as the value's start."""
    indent = len(line) - len(line.lstrip(" "))
    if colon_end:
        column = colon_end
    else:
        column = indent
        while line[column:column + 2] == "- ":
            column += 2
    while column < len(line) and line[column] in " \u00a0\u202f\u2007\t":
        column += 1
    return column


def quoted_columns(line: str) -> set[int]:
    """Columns inside a straight-quoted YAML scalar ("..." or '...', opened where a value
    may start); a quote inside plain text (don't) opens nothing."""
    inside: set[int] = set()
    column, previous = 0, " "
    while column < len(line):
        char = line[column]
        if char in "\"'" and previous in " \t[{,:-":
            close = _closing_quote(line, column)
            inside.update(range(column, close + 1))
            column, previous = close + 1, char
            continue
        if char == "#" and previous in " \t":
            inside.update(range(column, len(line)))  # a comment: whatever is in it is text
            break
        previous = char
        column += 1
    return inside


def _closing_quote(line: str, start: int) -> int:
    quote, column = line[start], start + 1
    while column < len(line):
        if quote == '"' and line[column] == "\\":
            column += 2
            continue
        if line[column] == quote:
            if quote == "'" and line[column + 1:column + 2] == "'":
                column += 2  # '' is an escaped quote inside '...'
                continue
            return column
        column += 1
    return len(line) - 1  # unclosed: YAML reports it; the rest of the line is its text
