"""Plain text by display width: CJK characters take two columns, and may break between them."""

from __future__ import annotations

import re
import unicodedata

# A run that must stay whole (a word, a URL), a single wide character, or a space.
_TOKEN_RE = re.compile(r"\s+|[^\s]")
_NO_BREAK_BEFORE = set("、。，．：；！？）」』】〉》〕］｝〗〙〛ー…‥・ゝゞヽヾ々％,.:;!?)]}")
_NO_BREAK_AFTER = set("（「『【〈《〔［｛〖〘〚([{")


def char_width(ch: str) -> int:
    """Columns a character takes in a fixed-width font (UAX #11: wide and fullwidth take 2)."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def pad(text: str, width: int) -> str:
    """TEXT followed by spaces up to WIDTH columns."""
    return text + " " * max(0, width - display_width(text))


def _is_wide(ch: str) -> bool:
    return char_width(ch) == 2


def _tokens(text: str) -> list[str]:
    """Words (runs of narrow non-space characters), single wide characters, and single spaces.
    Chinese and Japanese have no spaces between words: a line may break between any two wide
    characters, except before closing and after opening punctuation (kinsoku)."""
    tokens: list[str] = []
    for piece in _TOKEN_RE.findall(" ".join(text.split())):
        glue = tokens and not tokens[-1].isspace() and not piece.isspace()
        if glue and (piece in _NO_BREAK_BEFORE or tokens[-1][-1] in _NO_BREAK_AFTER
                     or not (_is_wide(piece) or _is_wide(tokens[-1][-1]))):
            tokens[-1] += piece
        else:
            tokens.append(piece)
    return tokens


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most WIDTH columns; a word or URL longer than a line stays whole."""
    lines: list[str] = []
    line, used = "", 0
    for token in _tokens(text):
        size = display_width(token)
        if token.isspace():
            if line:
                line, used = line + " ", used + 1
            continue
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
        line, used = line + token, used + size
    if line.strip():
        lines.append(line.rstrip())
    return lines


def hanging(text: str, width: int = 72, indent: int = 2) -> str:
    """TEXT wrapped to WIDTH columns, lines after the first indented (a list item's title)."""
    first, *rest = wrap(text, width) or [""]
    return "\n".join([first] + [" " * indent + line for line in wrap(" ".join(rest),
                                                                       width - indent)])


def underline(title: str, char: str = "=") -> str:
    """A rule as wide as TITLE shows in a fixed-width font."""
    return char * display_width(title)
