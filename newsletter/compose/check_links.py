"""The links and images of an issue that readers cannot follow: unsafe schemes the sanitiser
removes, and hosts the Internet cannot reach."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import markdown

from newsletter.netguard import Resolver
from newsletter.public_names import local_name_reason, private_only_hosts


class Links(HTMLParser):
    """The hrefs and (src, alt) pairs of an HTML text, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.links.append(a.get("href") or "")
        elif tag == "img":
            self.images.append((a.get("src") or "", a.get("alt")))


def links_in(text: str) -> Links:
    parser = Links()
    parser.feed(text)
    return parser


def unreachable(parser: Links, sources: str, resolve: Resolver) -> list[tuple[str, str, str]]:
    """Images (errors) and links (warnings) from the draft or its feed items whose host readers
    cannot reach: a private or loopback address, a local-only name, or a name whose every DNS
    answer is private. The template's own links (base_url) are the config's business."""
    def host(url: str) -> str:
        try:
            return urlsplit(url).hostname or ""
        except ValueError:
            return ""

    urls = [("error", "image", src) for src, _ in parser.images] + \
        [("warning", "link", href) for href in parser.links]
    urls = [(s, k, u) for s, k, u in urls if host(u) and u.startswith(("http://", "https://"))
            and (u in sources or html.escape(u) in sources)]
    private = private_only_hosts({host(u) for _, _, u in urls}, resolve)
    found, seen = [], set()
    for severity, kind, url in urls:
        reason = local_name_reason(host(url)) or private.get(host(url), "")
        if reason and url not in seen:
            seen.add(url)
            found.append((severity, url, f"{kind} {url!r} is on {host(url)}, {reason}: "
                          "subscribers cannot reach it"))
    return found


_REMOVED_TAG_RE = re.compile(r"<(script|iframe|form|object|embed|style|svg|input|button)\b",
                             re.IGNORECASE)
_HANDLER_RE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def stripped_constructs(raw: str) -> list[tuple[int, tuple[str, str]]]:
    """What the sanitiser will remove from the draft, by line: the editor should know."""
    found = []
    for number, line in enumerate(raw.split("\n"), 1):
        for url in _unsafe_urls(line):
            scheme = url.split(":", 1)[0]
            found.append((number, ("error", f"a {scheme}: link is not allowed in email "
                                            "(use an absolute https:// URL)")))
        if match := _REMOVED_TAG_RE.search(line):
            found.append((number, ("warning", f"<{match.group(1).lower()}> is removed: email "
                                              "clients do not run or show it")))
        if _HANDLER_RE.search(line):
            found.append((number, ("warning", "event handler attributes (on...=) are removed")))
    return found


def _unsafe_urls(line: str) -> list[str]:
    """Link and image URLs on one Markdown line whose scheme is not http(s) or mailto, read
    the way a browser would (entities decoded, tabs and newlines dropped, any case)."""
    parser = links_in(markdown.markdown(line))
    urls = parser.links + [src for src, _ in parser.images]
    unsafe = []
    for url in urls:
        cleaned = re.sub(r"[\x00-\x20]", "", url).lower()
        scheme = cleaned.split(":", 1)[0] if ":" in cleaned else ""
        if scheme and scheme.isalpha() and scheme not in ("http", "https", "mailto"):
            unsafe.append(cleaned)
    return unsafe
