"""Per-recipient values put into an inlined edition by placeholder substitution."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from newsletter.compose.textwidth import hanging

# Plain word characters: premailer and lxml leave them alone inside href attributes,
# where Jinja-style "{{ x }}" would be percent-encoded (see tests/compose/test_inline.py).
NAME = "__NL_NAME__"
UNSUBSCRIBE_URL = "__NL_UNSUBSCRIBE_URL__"
PREFERENCES_URL = "__NL_PREFERENCES_URL__"
EDITION_NOTE = "__NL_EDITION_NOTE__"
KNOWN = (NAME, UNSUBSCRIBE_URL, PREFERENCES_URL, EDITION_NOTE)
PLACEHOLDER_RE = re.compile(r"__NL_[A-Z0-9_]+__")
# Only the exact slots are filled: a longer look-alike next to a slot cannot swallow it.
_SLOT_RE = re.compile("|".join(re.escape(k) for k in KNOWN))
# What draft and feed text may not carry: "__NL_" in any case. A zero-width space between
# the underscores keeps the text readable and makes it no slot, whatever decodes it later.
_LOOKALIKE_RE = re.compile(r"_(?=_nl_)", re.IGNORECASE)
PLACEHOLDER_LIKE_RE = re.compile(r"__nl_\w*", re.IGNORECASE)
_BREAK = "_\u200b"


@dataclass(frozen=True)
class Placeholders:
    """What templates see as `recipient`: the slot markers, filled in per message."""

    name: str = NAME
    unsubscribe_url: str = UNSUBSCRIBE_URL
    preferences_url: str = PREFERENCES_URL
    edition_note: str = EDITION_NOTE

    @classmethod
    def for_one_render(cls) -> Placeholders:
        """Markers with a fresh random nonce: no draft or feed text can know or spell them,
        so after rendering, only the template's own slots carry them (see seal_slots)."""
        nonce = secrets.token_hex(16).upper()
        return cls(f"__NL_NAME_{nonce}__", f"__NL_UNSUBSCRIBE_URL_{nonce}__",
                   f"__NL_PREFERENCES_URL_{nonce}__", f"__NL_EDITION_NOTE_{nonce}__")


@dataclass(frozen=True)
class Recipient:
    name: str
    unsubscribe_url: str
    # For a reader who gets another language's edition because theirs is not ready: a line
    # in their own language saying so (see edition_note); empty for everyone else.
    edition_note: str = ""

    @property
    def preferences_url(self) -> str:
        """The reader's preferences page: the same token as the unsubscribe link, so a message
        needs no second per-reader value (web.py answers both routes with it)."""
        return self.unsubscribe_url.replace("/unsubscribe/", "/preferences/", 1)


def neutralise(text: str) -> str:
    """Draft or feed text with every placeholder look-alike broken: it can never be a slot."""
    return _LOOKALIKE_RE.sub(_BREAK, text)


def seal_slots(rendered: str, markers: Placeholders) -> str:
    """The rendered edition with the one-render markers turned into the canonical slots and
    everything else that looks like a slot neutralised: whatever the draft, the feeds, the
    config or the CSS inliner put into the text, only the template's slots are filled."""
    slots = {markers.name: NAME, markers.unsubscribe_url: UNSUBSCRIBE_URL,
             markers.preferences_url: PREFERENCES_URL, markers.edition_note: EDITION_NOTE}
    pieces = re.split("(" + "|".join(map(re.escape, slots)) + ")", rendered)
    return "".join(slots.get(piece) or neutralise(piece) for piece in pieces)


def safe_url(url: str) -> str:
    """Percent-encode anything outside the URL-safe set, so a URL cannot break out of href."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")


def slot_values(recipient: Recipient, fallback_name: str) -> tuple[dict[str, str],
                                                                   dict[str, str]]:
    """(the plain-text values, the HTML values) of each slot for one reader: worked out once
    a message, each URL made safe once for both parts, used for every line."""
    name = recipient.name or fallback_name
    unsubscribe = safe_url(recipient.unsubscribe_url)
    # = safe_url(recipient.preferences_url): quoting keeps every safe character where it is
    # and makes no new "/unsubscribe/", so the replace finds the same first one
    preferences = unsubscribe.replace("/unsubscribe/", "/preferences/", 1)
    text = {NAME: name, UNSUBSCRIBE_URL: unsubscribe, PREFERENCES_URL: preferences,
            # the text template puts the slot at the start of a line: a note brings its
            # own blank line, an empty one leaves no gap
            EDITION_NOTE: f"{hanging(recipient.edition_note, 72, 0)}\n\n"
            if recipient.edition_note else ""}
    in_html = {NAME: html.escape(name), UNSUBSCRIBE_URL: html.escape(unsubscribe),
               PREFERENCES_URL: html.escape(preferences),
               EDITION_NOTE: html.escape(recipient.edition_note)}
    return text, in_html


def fill(template: str, values: dict[str, str]) -> str:
    """template with each slot replaced by its value (one of slot_values). A send fills the
    same few slot lines for every reader: each is split once (the matches sub() would
    replace), then joined with the reader's values, with no Python call per match."""
    parts = _SPLITS.get(template)
    if parts is None:
        parts = tuple(split_slots(template))
        if len(_SPLITS) < _SPLITS_KEPT:
            _SPLITS[template] = parts
    if len(parts) == 3:  # the usual line: one slot
        return parts[0] + values[parts[1]] + parts[2]
    return "".join([values[p] if i % 2 else p for i, p in enumerate(parts)])


def slots_in(template: str) -> tuple[str, ...]:
    """The slot markers of a template, in order (from fill's kept split)."""
    parts = _SPLITS.get(template)
    if parts is None:
        parts = tuple(split_slots(template))
        if len(_SPLITS) < _SPLITS_KEPT:
            _SPLITS[template] = parts
    return parts[1::2]


_SPLITS: dict[str, tuple[str, ...]] = {}
_SPLITS_KEPT = 4096  # slot lines of the editions in memory; previews of others beyond it


def split_slots(template: str) -> list[str]:
    """The template as text, slot, text, ..., slot, text (odd places: the slot markers), the
    same matches fill() replaces."""
    return _SLOT_SPLIT_RE.split(template)


_SLOT_SPLIT_RE = re.compile(f"({_SLOT_RE.pattern})")


def personalise_html(template: str, recipient: Recipient, fallback_name: str) -> str:
    return fill(template, slot_values(recipient, fallback_name)[1])


def personalise_text(template: str, recipient: Recipient, fallback_name: str) -> str:
    return fill(template, slot_values(recipient, fallback_name)[0])


def unknown_placeholders(text: str) -> list[str]:
    return sorted({m for m in PLACEHOLDER_RE.findall(text) if m not in KNOWN})


def placeholder_lookalikes(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every placeholder look-alike: drafts may carry none."""
    return [(text.count("\n", 0, m.start()) + 1, m.group())
            for m in PLACEHOLDER_LIKE_RE.finditer(text)]
