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
        _flattened(fragment),
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
    return _accessible_tables(_IMG_RE.sub(_sized_image, cleaned))


# No email needs markup nested deeper; html5ever's tree building takes time quadratic in the
# depth (100,000 nested <div>s, 600 kB, took 36 s), so a feed could stall a pull with it.
MAX_DEPTH = 200
_TAG_RE = re.compile(r"<(/?)([A-Za-z][\w:-]*)[^>]*>")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}


def _flattened(fragment: str) -> str:
    """FRAGMENT with the start and end tags below MAX_DEPTH removed, their text kept. Only
    tags are taken out and nh3 still cleans the result: nothing unsafe can be let through."""
    if fragment.count("<") < MAX_DEPTH:
        return fragment
    out, depth, last = [], 0, 0
    for tag in _TAG_RE.finditer(fragment):
        closing, name = tag.group(1), tag.group(2).lower()
        if name in _VOID or tag.group().endswith("/>"):
            continue
        depth += -1 if closing else 1
        if depth > MAX_DEPTH or (closing and depth >= MAX_DEPTH):
            out.append(fragment[last:tag.start()])
            last = tag.end()
        depth = max(depth, 0)
    return "".join(out) + fragment[last:]


# The email's content column: 600 px less the 32 px padding on each side.
CONTENT_WIDTH = 536
_ATTR_RE = re.compile(r'\s([a-z-]+)="([^"]*)"')
_EMPTY_TH_RE = re.compile(r"<th\b([^>]*)>(\s*)</th>")
_TH_RE = re.compile(r"<th\b")
_THEAD_RE = re.compile(r"(<thead\b.*?</thead>)", re.DOTALL)


def _sized_image(match: re.Match[str]) -> str:
    """Every image gets a numeric width no wider than the column (Outlook ignores CSS
    max-width and shows an image without one at its full size), and no height: the CSS
    height:auto keeps the aspect ratio wherever max-width shrinks it."""
    attrs = dict(_ATTR_RE.findall(match.group()))
    width = attrs.pop("width", "")
    attrs.pop("height", None)
    number = int(width) if width.isdigit() else 0
    attrs["width"] = str(number if 0 < number <= CONTENT_WIDTH else CONTENT_WIDTH)
    # width:100% with a max-width in px: a percentage gives the image no minimum width, so a
    # table cell around it can still shrink to a 320 px phone (a width alone would hold it).
    attrs["style"] = f"width:100%; max-width:{attrs['width']}px; height:auto"
    return "<img" + "".join(f' {k}="{v}"' for k, v in attrs.items()) + ">"


def _accessible_tables(fragment: str) -> str:
    """Header cells say what they head (scope, WCAG 1.3.1); an empty header cell, as in a
    Markdown table's top-left corner, is a data cell (axe: empty-table-header)."""
    fragment = _EMPTY_TH_RE.sub(r"<td\1>\2</td>", fragment)
    parts = _THEAD_RE.split(fragment)
    return "".join(_TH_RE.sub('<th scope="col"', part) if part.startswith("<thead")
                   else _TH_RE.sub('<th scope="row"', part) for part in parts)


def _absolute_urls_only(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "src"):
        return value if value.lower().startswith(("http://", "https://", "mailto:")) else None
    return value


def plain_text(fragment: str) -> str:
    """Text content of an HTML fragment: tags removed, entities decoded, whitespace folded."""
    return " ".join(html.unescape(nh3.clean(fragment, tags=set())).split())


def clean_line(text: str, strip: Callable[[str], str] = str.strip) -> str:
    """One-line plain text with control and bidi-override characters removed."""
    if text.isascii() and text.isprintable():  # a CSV's tags, most names: nothing to replace
        return strip(text)
    return strip("".join(" " if _is_control(ch) else ch for ch in text))


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 32 or code == 127 or 0x80 <= code < 0xA0 or code in _BIDI_CONTROLS


# Bidi embedding and override controls can make a title read differently from its bytes
# (CVE-2021-42574, "Trojan Source").
_BIDI_CONTROLS = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}
