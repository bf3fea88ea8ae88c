"""Counted links: an edition's outside links become BASE/r/ID, and a canary link is added.

The id names the edition and the link, never the reader: every copy of an edition carries
the same URLs, so a forwarded message or the web archive counts the same way and nothing in
a link can tell who clicked. Our own pages (base_url: view online, other languages, the
subscribe page), the per-reader slots (unsubscribe, preferences), mailto: and in-page
anchors stay as they are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from newsletter.compose.personalise import PLACEHOLDER_RE, safe_url
from newsletter.model import Edition

ROUTE = "/r/"
_HREF_RE = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_START_RE = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
# Invisible to people in every client (display:none, and mso-hide for Outlook's Word engine),
# hidden from assistive technology and out of the tab order; a link scanner, which fetches
# every href it finds, follows it all the same. No image: nothing loads when the mail is opened.
CANARY_HTML = ('<a href="{url}" aria-hidden="true" tabindex="-1" data-nl-canary="" '
               'style="display:none;mso-hide:all;font-size:0;line-height:0;max-height:0;'
               'overflow:hidden;color:transparent"></a>')


@dataclass(frozen=True)
class CountedEdition:
    edition: Edition  # the rewritten copy, as frozen and sent
    links: tuple[tuple[str, str], ...]  # (id, original URL), in order of first appearance
    canary_id: str


def countable(url: str, base_url: str) -> bool:
    """An outside http(s) link: not our own pages, not a per-reader slot."""
    if PLACEHOLDER_RE.search(url) or not re.match(r"https?://", url, re.IGNORECASE):
        return False
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return False  # never a Location header with a control character in it
    own = base_url.rstrip("/")
    return not (url == own or url.startswith((own + "/", own + "?", own + "#")))


def html_links(page: str, base_url: str) -> list[str]:
    """The countable hrefs of an HTML part, unescaped, in document order, each once."""
    found = (html.unescape(m.group(3)).strip() for m in _HREF_RE.finditer(page))
    return list(dict.fromkeys(u for u in found if countable(u, base_url)))


def redirect_url(base_url: str, link_id: str) -> str:
    return f"{base_url.rstrip('/')}{ROUTE}{link_id}"


def count_links(edition: Edition, base_url: str,
                ids_for: Callable[[list[str]], Mapping[str, str]],
                canary_key: str) -> CountedEdition:
    """The edition with its outside links through /r/ and the canary after <body>.
    ids_for(urls) gives url -> id (and canary_key -> the canary's id), created when new."""
    urls = html_links(edition.html, base_url)
    ids = ids_for(urls)

    def swap_href(m: re.Match[str]) -> str:
        url = html.unescape(m.group(3)).strip()
        if url not in ids or url == canary_key:
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{redirect_url(base_url, ids[url])}{m.group(2)}"

    page = _HREF_RE.sub(swap_href, edition.html)
    canary = CANARY_HTML.format(url=html.escape(redirect_url(base_url, ids[canary_key])))
    page, added = _BODY_START_RE.subn(lambda m: m.group() + canary, page, count=1)
    if not added:
        page = canary + page
    return CountedEdition(replace(edition, html=page, text=_rewrite_text(
        edition.text, {u: redirect_url(base_url, ids[u]) for u in urls})),
        tuple((ids[u], u) for u in urls), ids[canary_key])


def _rewrite_text(text: str, targets: dict[str, str]) -> str:
    """The same /r/ URLs in the text part: each URL the HTML links to, where it stands whole
    (between spaces, or in <...> as the text part writes "label <url>"). Longest first, so
    a URL that is the start of another is not cut out of it."""
    if not targets:
        return text
    spelled = {safe_url(u): r for u, r in targets.items()} | targets
    pattern = re.compile(r"(?<![^\s<(])(" + "|".join(
        re.escape(u) for u in sorted(spelled, key=len, reverse=True)) + r")(?=[\s>)]|$)")
    return pattern.sub(lambda m: spelled[m.group(1)], text)
