"""[newsletter]: the sender, the list's name and URL, its zone and language, the footer."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.config.problems import Problems
from newsletter.headers import header_text_problem

# Header-bound values: RFC 2047 encoded words or control characters here would be decoded or
# refused only when the first message is built, after the edition is frozen (see message.py).
ADDR_SPEC_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+")
_LIST_ID_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")
_URL_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+")


def parse_sender(p: Problems, nl: dict) -> Address:
    raw = p.text(nl, "from", "newsletter")
    name, addr = parseaddr(raw)
    # getaddresses: parseaddr keeps the first of "a@x.org, b@y.org" and drops the rest silently
    if raw and (len(getaddresses([raw])) != 1 or not ADDR_SPEC_RE.fullmatch(addr)):
        p.add("newsletter.from", "must be one address like 'Name <news@example.org>' "
              "(the address in ASCII)")
        return Address("", "invalid", "example.invalid")
    if not raw:
        return Address("", "invalid", "example.invalid")
    user, domain = addr.split("@")
    return Address(name, user, domain)


def parse_base_url(p: Problems, nl: dict) -> str:
    """base_url without its trailing slash."""
    base_url = p.text(nl, "base_url", "newsletter", default="https://example.invalid")
    if base_url and urlsplit(base_url).scheme not in ("http", "https"):
        p.add("newsletter.base_url", "must start with https:// (or http://)")
    elif base_url and not _URL_RE.fullmatch(base_url):
        # It starts every List-Unsubscribe URL, which is written whole into a header.
        p.add("newsletter.base_url", "must be a plain URL: ASCII, no spaces, quotes, <, > or ,")
    return base_url.rstrip("/")


def check_header_values(p: Problems, nl: dict) -> None:
    """What p.text does not catch in header-bound keys (it reports CR/LF itself)."""
    shapes = {
        "reply_to": (ADDR_SPEC_RE, "must be one plain ASCII address like 'team@example.org'"),
        # RFC 2919: a list-id is a dot-atom
        "list_id": (_LIST_ID_RE, "must be a dot-separated ASCII name like 'news.example.org'"),
    }
    for key in ("name", "from", "reply_to", "list_id"):
        value = nl.get(key)
        if not isinstance(value, str) or not value.strip() or "\r" in value or "\n" in value:
            continue
        if problem := header_text_problem(value):  # the one rule for header text
            p.add(f"newsletter.{key}", problem)
        elif key in shapes and not shapes[key][0].fullmatch(value.strip()):
            p.add(f"newsletter.{key}", shapes[key][1])


def parse_timezone(p: Problems, nl: dict) -> ZoneInfo:
    name = p.text(nl, "timezone", "newsletter", required=False, default="UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        p.add("newsletter.timezone", f"is not a known time zone: {name!r} (e.g. 'Europe/Zurich')")
        return ZoneInfo("UTC")


def parse_texts(p: Problems, nl: dict, sender: Address) -> dict[str, Any]:
    """The remaining Config fields of [newsletter], read in the order they are reported."""
    return {
        "name": p.text(nl, "name", "newsletter"),
        "reply_to": p.text(nl, "reply_to", "newsletter", required=False),
        "list_id": p.text(nl, "list_id", "newsletter"),
        "default_language": _language(p, nl),
        "organisation": p.text(nl, "organisation", "newsletter", required=False,
                               default=sender.display_name or sender.domain),
        "postal_address": p.text(nl, "postal_address", "newsletter"),
        "reason": p.text(nl, "reason", "newsletter", required=False,
                         default="You receive this because you subscribed to our newsletter."),
    }


def _language(p: Problems, nl: dict) -> str:
    value = p.text(nl, "default_language", "newsletter", required=False, default="en").lower()
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", value):
        p.add("newsletter.default_language", f"must be a language code like 'en' or 'pt-br', "
              f"not {value!r}")
        return "en"
    return value
