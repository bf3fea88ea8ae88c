"""What text may go into a message header: the one rule config, drafts, the list and web obey."""

from __future__ import annotations

import re
import unicodedata

from newsletter.errors import InputError

# CR and LF end a header (RFC 5322 2.2); NEL, LS and PS do for str.splitlines() and for
# email.header, which would turn them into folds. Other controls (C0, DEL, C1) have no place
# in a name or subject, encoded or not (the parser flags a NonPrintableDefect); even TAB,
# which is header whitespace but reaches readers as a space or not at all.
_LINE_SEPARATORS = frozenset("\x85\u2028\u2029")
# Bidi embeddings, overrides, isolates and marks make text read differently from its
# characters (CVE-2021-42574, "Trojan Source"); right-to-left text needs none of them.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")
# Every other Unicode format character (category Cf: zero-width space, BOM, word joiner,
# invisible operators, tag characters) hides text too, except the zero-width (non-)joiner,
# which Persian, Indic scripts and emoji sequences need.
_JOINERS = frozenset("\u200c\u200d")
# "=?charset?q?...?=": a client decodes it, so it could carry what we refuse (RFC 2047 5);
# any "=?...?=" is refused, not only a well-formed encoded word.
_ENCODED_WORD_RE = re.compile(r"=\?.*\?=", re.DOTALL)


def header_text_problem(value: str) -> str:
    """Why value may not go into a header ("" if it may)."""
    if value.isascii() and value.isprintable() and "=?" not in value:
        return ""  # printable ASCII has no control, bidi or format character: skip the scan
    for ch in value:
        reason = _char_problem(ch)
        if reason:
            return f"contains {reason} (U+{ord(ch):04X})"
    if _ENCODED_WORD_RE.search(value):
        return "contains an RFC 2047 encoded word (=?...?=)"
    return ""


def _char_problem(ch: str) -> str:
    category = unicodedata.category(ch)
    if category == "Cc" or ch in _LINE_SEPARATORS:
        return "a control character"
    if ch in _BIDI:
        return "a bidi control character"
    if category == "Cf" and ch not in _JOINERS:
        return "an invisible formatting character"
    if category == "Cs":
        return "a lone surrogate"
    return ""


def check_header_text(value: str, what: str) -> str:
    """value unchanged if it may go into a header; else InputError naming what it is."""
    problem = header_text_problem(value)
    if problem:
        raise InputError(f"{what} {problem}: {value[:60]!r}")
    return value


def clean_header_text(value: str) -> str:
    """Text from outsiders (a CSV, the web form) made header-safe where that is meaningful:
    controls and line breaks become spaces, invisible formatting characters go, runs of
    whitespace become one space. Encoded words are left for check_header_text to refuse:
    a name that spells one is not a name to guess at."""
    if value.isascii() and value.isprintable():  # no control or format character to drop
        return _WHITESPACE_RUN_RE.sub(" ", value).strip()
    kept = []
    for ch in value:
        reason = _char_problem(ch)
        if not reason:
            kept.append(ch)
        elif reason in ("a control character", "a lone surrogate"):
            kept.append(" ")
    # A run of whitespace becomes one space; a lone no-break or ideographic space stays.
    return _WHITESPACE_RUN_RE.sub(" ", "".join(kept)).strip()


_WHITESPACE_RUN_RE = re.compile(r"\s{2,}")  # controls are spaces by now
