"""Read a draft's raw bytes line by line, before YAML sees them, and name every pasted-in
trap at its line and column: bytes that are not UTF-8, tabs, curly quotes used as YAML quotes,
non-breaking and zero-width spaces in the structure, unquoted ': ' or ' #' in a value, and
Word-style bullets in the body. YAML itself stops at the first of these, often a line late."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.compose.word_bullets import bullet_runs
from newsletter.compose.yaml_line import (
    CURLY,
    INVISIBLE,
    LOOKALIKE_SPACES,
    char_name,
    key_span,
    quoted_columns,
    value_start,
)

_COMMENT_RE = re.compile(r"\s#(?:\s|$)")
_INVISIBLE_RE = re.compile("[" + "".join(INVISIBLE) + "]")
_CLOSING_RE = re.compile(r"^---[ \t]*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_BLOCK_RE = re.compile(r"^\s*[|>][-+0-9]*\s*(#.*)?$")  # `key: >` starts a block of text


@dataclass(frozen=True)
class LintProblem:
    line: int  # 1-based line in the draft file
    severity: str  # "error" or "warning"
    message: str  # says where on the line (column) when that matters, and what to do
    key: str = ""  # the front-matter key on that line, when there is one

    def text(self) -> str:
        """The form DraftError problems take: `line N: message`."""
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Linted:
    text: str  # the draft decoded: BOM dropped, bytes that are not UTF-8 replaced
    problems: tuple[LintProblem, ...]
    fatal: bool = False  # not text at all (UTF-16, binary): nothing else is worth reading


def decode_draft(data: bytes) -> Linted:
    """The text of a draft; a draft that is not UTF-8 gets one problem naming its first bad
    line (the rest is still read, with the bad bytes replaced, so other problems show too)."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return Linted(data[bom:].decode("utf-8"), ())
    except UnicodeDecodeError as exc:
        first = exc.start + bom
    bad = [n for n, line in enumerate(data[bom:].split(b"\n"), 1) if not _is_utf8(line)]
    more = f"; {len(bad) - 1} more line(s) too" if len(bad) > 1 else ""
    utf16 = b"\x00" in data
    hint = ("it looks like UTF-16: save the file as UTF-8" if utf16 else
            "save the file as UTF-8 (in Word: Save As, Plain Text, Unicode (UTF-8))")
    problem = LintProblem(0, "error", f"not UTF-8 text (byte {first}) on line {bad[0]}{more}: "
                                      f"{hint}")
    return Linted(data[bom:].decode("utf-8", "replace"), (problem,), fatal=utf16)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def lint_draft(data: bytes) -> Linted:
    """Every problem this line scan finds in a draft's bytes, in line order."""
    decoded = decode_draft(data)
    if decoded.fatal:
        return decoded
    lines = decoded.text.replace("\r\n", "\n").split("\n")
    problems = list(decoded.problems)
    end = len(lines)
    if lines and lines[0].rstrip() == "---":
        end = next((i for i in range(1, len(lines)) if _CLOSING_RE.match(lines[i])), len(lines))
        problems += _header_problems(lines[1:end])
    body_start = end + 1 if end < len(lines) else len(lines)
    problems += _body_problems(lines, body_start)
    return Linted(decoded.text, tuple(problems))


def _header_problems(rows: list[str]) -> list[LintProblem]:
    """The front matter's lines (the draft's lines 2...), each checked on its own, except the
    text of a block scalar (`preheader: >` and the lines indented under it): that is text,
    where ': ', '#' and tabs mean nothing to YAML."""
    found: list[LintProblem] = []
    block_indent = -1  # the indent of the key whose | or > block we are in
    for number, line in enumerate(rows, 2):
        indent = len(line) - len(line.lstrip(" "))
        if block_indent >= 0 and (not line.strip() or indent > block_indent):
            continue
        block_indent = -1
        found += _header_line(number, line)
        _, _, colon_end = key_span(line)
        if colon_end and _BLOCK_RE.match(line[colon_end:]):
            block_indent = indent
    return found


def _header_line(number: int, line: str) -> list[LintProblem]:
    found: list[LintProblem] = []
    key, key_end, colon_end = key_span(line)

    def add(severity: str, message: str) -> None:
        found.append(LintProblem(number, severity, f"front matter: {message}", key))

    quoted = quoted_columns(line)
    tab = next((i for i, c in enumerate(line) if c == "\t" and i not in quoted), None)
    if tab is not None:
        add("error", f"a tab at column {tab + 1}: YAML does not allow tabs here; use spaces")
    value_at = value_start(line, colon_end)
    _character_problems(line, quoted, key, key_end, colon_end, value_at, add)
    if colon_end:
        _unquoted_value_problems(line[value_at:], key, value_at, add)
    return found


def _character_problems(line: str, quoted: set[int], key: str, key_end: int, colon_end: int,
                        value_at: int, add: Callable[[str, str], None]) -> None:
    """Look-alike spaces, invisible characters and curly quotes where YAML reads them."""
    for column, char in enumerate(line):
        if column in quoted:
            continue
        if char in LOOKALIKE_SPACES and column <= value_at:
            where = "in the key" if colon_end and column < colon_end else "before the value"
            add("error", f"{char_name(char)} at column {column + 1}, {where}, pasted from a word "
                         "processor: YAML does not read it as a space; type a plain space")
        elif char in INVISIBLE:
            severity = "error" if column < value_at else "warning"
            add(severity, f"{char_name(char)} at column {column + 1}: it is invisible but kept in "
                          "the text; delete it")
        elif char in CURLY and (column < key_end or column == value_at
                                 or line[column - 1:column] in ("[", ",")
                                 or line[column - 2:column] == ", "):
            if column < key_end:
                add("error", f"{char_name(char)} at column {column + 1} in the key: keys take no "
                             "quotes; delete it")
            else:
                add("error", f"{char_name(char)} at column {column + 1} quotes the value: YAML "
                             "quotes only with straight quotes (\" or '), so the curly ones "
                             "become part of the text; retype them as \"...\" (to keep curly "
                             f"quotes in the text, wrap them: {key or 'key'}: \"“...”\")")
            break  # one curly-quote report per line: the fix is the same


def _unquoted_value_problems(value: str, key: str, value_at: int,
                             add: Callable[[str, str], None]) -> None:
    """A plain value YAML cuts short: at an unquoted ': ' (a new key) or ' #' (a comment)."""
    if not value or value[0] in "\"'[{|>&*!" or value[0] in CURLY:
        return
    # ' # ' starts a comment the editor wrote on purpose; '#1' glued to a word does not
    text = _COMMENT_RE.split(value, maxsplit=1)[0].rstrip()
    name = f"the {key}" if key else "the value"
    fixed = f"{key or 'key'}: {json.dumps(text, ensure_ascii=False)}"
    colon = text.find(": ") if ": " in text else (len(text) - 1 if text.endswith(":") else -1)
    hash_at = text.find(" #")
    if colon >= 0:
        add("error", f"an unquoted ': ' in {name} (column {value_at + colon + 1}): YAML "
                     f"reads it as a new key; put {name} in quotes: {fixed}")
    elif hash_at >= 0:
        add("error", f"YAML reads ' #' in {name} (column {value_at + hash_at + 2}) as the "
                     f"start of a comment and drops the rest; put {name} in quotes: "
                     f"{fixed}")


def _body_problems(lines: list[str], start: int) -> list[LintProblem]:
    found = [LintProblem(start + first + 1, "warning",
                         f"{count} line(s) start with a Word-style bullet '{bullet}': they are "
                         "sent as a list; type '- ' instead to make that plain Markdown")
             for first, count, bullet in bullet_runs(lines[start:])]
    fenced = False
    for index in range(start, len(lines)):
        if _FENCE_RE.match(lines[index]):
            fenced = not fenced
        invisible = None if fenced else _INVISIBLE_RE.search(lines[index])
        if invisible:
            found.append(LintProblem(index + 1, "warning", f"{char_name(invisible[0])} at column "
                                     f"{invisible.start() + 1}: it is invisible but breaks "
                                     "words and links; delete it"))
    return sorted(found, key=lambda p: p.line)
