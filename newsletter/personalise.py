"""Per-recipient values put into an inlined edition by placeholder substitution."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import quote

# Plain word characters: premailer and lxml leave them alone inside href attributes,
# where Jinja-style "{{ x }}" would be percent-encoded (see tests/test_inline.py).
NAME = "__NL_NAME__"
UNSUBSCRIBE_URL = "__NL_UNSUBSCRIBE_URL__"
KNOWN = (NAME, UNSUBSCRIBE_URL)
PLACEHOLDER_RE = re.compile(r"__NL_[A-Z0-9_]+__")


@dataclass(frozen=True)
class Placeholders:
    """What templates see as `recipient`: the placeholder strings, filled in per message."""

    name: str = NAME
    unsubscribe_url: str = UNSUBSCRIBE_URL


@dataclass(frozen=True)
class Recipient:
    name: str
    unsubscribe_url: str


def safe_url(url: str) -> str:
    """Percent-encode anything outside the URL-safe set, so a URL cannot break out of href."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")


def personalise_html(template: str, recipient: Recipient, fallback_name: str) -> str:
    values = {
        NAME: html.escape(recipient.name or fallback_name),
        UNSUBSCRIBE_URL: html.escape(safe_url(recipient.unsubscribe_url)),
    }
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(), m.group()), template)


def personalise_text(template: str, recipient: Recipient, fallback_name: str) -> str:
    values = {NAME: recipient.name or fallback_name,
              UNSUBSCRIBE_URL: safe_url(recipient.unsubscribe_url)}
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(), m.group()), template)


def unknown_placeholders(text: str) -> list[str]:
    return sorted({m for m in PLACEHOLDER_RE.findall(text) if m not in KNOWN})
