"""The allowlist HTML sanitiser (nh3) for draft and feed HTML: what email clients render safely."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import nh3

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"align", "colspan", "rowspan", "style"},
    "th": {"align", "colspan", "rowspan", "style"},
    "abbr": {"title"},
}
# javascript:, data:, vbscript: and every other scheme are dropped with their attribute.
_SCHEMES = {"http", "https", "mailto"}
# nh3's output quotes every attribute and escapes ">" and '"' inside values, so this is exact.
_IMG_RE = re.compile(r"<img\b[^>]*>")


def sanitize_html(fragment: str, *, absolute_only: bool = False) -> str:
    """Keep only tags, attributes and URL schemes that are safe and useful in email.

    absolute_only drops relative link and image URLs too: a feed's relative URL means
    nothing in an inbox, whereas a draft's is kept so that `check` can point at it.
    """
    cleaned = nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        filter_style_properties={"text-align"},
        link_rel=None,
        strip_comments=True,
        attribute_filter=_absolute_urls_only if absolute_only else None,
    )
    if absolute_only:
        # An image whose relative or data: URL was dropped would show as a broken box (and fail
        # `check`, which wants every image absolute): drop the element with its URL.
        cleaned = _IMG_RE.sub(lambda m: m.group() if ' src="' in m.group() else "", cleaned)
    return cleaned


def _absolute_urls_only(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "src"):
        return value if value.lower().startswith(("http://", "https://", "mailto:")) else None
    return value


def plain_text(fragment: str) -> str:
    """Text content of an HTML fragment: tags removed, entities decoded, whitespace folded."""
    return " ".join(html.unescape(nh3.clean(fragment, tags=set())).split())


def clean_line(text: str, strip: Callable[[str], str] = str.strip) -> str:
    """One-line plain text with control and bidi-override characters removed."""
    return strip("".join(" " if _is_control(ch) else ch for ch in text))


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or code == 127 or 0x80 <= code < 0xA0 or code in _BIDI_CONTROLS


# Bidi embedding and override controls can make a title read differently from its bytes
# (CVE-2021-42574, "Trojan Source").
_BIDI_CONTROLS = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
