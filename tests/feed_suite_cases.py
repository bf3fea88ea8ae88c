"""The public feed suite sample (tests/corpora/feeds): each case's header, and the two edits
that let a case built for feedparser's own asserts reach this project's items."""

from __future__ import annotations

import ast
import codecs
import re
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpora" / "feeds"
FILES = sorted(CORPUS.rglob("*.xml"))
FEED_URL = "http://example.com/suite/feed.xml"  # the address a case is "fetched" from

_FIELD_RE = re.compile(r"^\s*(Description|Expect|Header):\s*(.*)$", re.MULTILINE)
_DECLARED_RE = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=["']([\w.:-]+)["']""")
_CHARSET_RE = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
# "not bozo and entries[0]['title'] == '...'", "entries[0].summary == '...'", "feed['title'] == ..."
_EXPECT_RE = re.compile(r"""(entries\[0\](?:\['(?:title|description|summary)'\]|\.(?:title|summary)
    |\['content'\]\[0\]\['value'\])
    |feed\['title'\])\s*==\s*('(?:[^'\\]|\\.)*')\s*(?:and|$)""", re.VERBOSE)


@dataclass(frozen=True)
class Case:
    path: Path
    description: str
    expect: str
    headers: dict[str, str]

    @property
    def kind(self) -> str:
        """The corpus folder: sanitize, base, encoding, entities, illformed, dates, ..."""
        return self.path.parent.name if self.path.parent != CORPUS else "sanitize"

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def base_url(self) -> str:
        return self.headers.get("content-location", FEED_URL)

    @property
    def well_formed(self) -> bool:
        """feedparser's own verdict: "not bozo", or no word on bozo (a plain value check)."""
        return "bozo" not in self.expect or "not bozo" in self.expect

    def expected_text(self) -> tuple[str, str] | None:
        """(field, text) when the header compares an entry's (or the feed's) title or summary
        with a string; field is "title" or "summary"."""
        match = _EXPECT_RE.search(self.expect)
        if not match:
            return None
        field = "title" if match.group(1).endswith(("title']", ".title")) else "summary"
        return field, ast.literal_eval(match.group(2))

    def body(self) -> bytes:
        """The bytes to parse: a link added to each entry without one (this project drops
        items without an absolute link), and a feed with no entries gets its title as one."""
        raw = self.path.read_bytes()
        codec = self.codec(raw)
        text = raw.decode(codec, "surrogateescape")
        text = _title_as_entry(text)
        text = _ENTRY_RE.sub(lambda m: _linked(m, '<link rel="alternate" href="{}"/>'), text)
        text = _ITEM_RE.sub(lambda m: _linked(m, "<link>{}</link>"), text)
        return text.encode(codec, "surrogateescape")

    def codec(self, raw: bytes) -> str:
        declared = _CHARSET_RE.search(self.content_type)
        found = declared.group(1) if declared else None
        if not found and (match := _DECLARED_RE.match(raw)):
            found = match.group(1).decode("ascii")
        if not found and raw[:4] in (b"\x4c\x6f\xa7\x94",):  # "<?xm" in EBCDIC
            found = "cp037"
        try:
            return codecs.lookup(found or "utf-8").name
        except LookupError:
            return "utf-8"


_ENTRY_RE = re.compile(r"(<entry\b[^>]*>)([\s\S]*?</entry>)")
_ITEM_RE = re.compile(r"(<item\b[^>]*>)([\s\S]*?</item>)", re.IGNORECASE)


def _linked(match: re.Match[str], element: str) -> str:
    start, rest = match.groups()
    if re.search(r"<link[\s>/]", rest, re.IGNORECASE) or re.search(r"\shref=", start, re.I):
        return match.group()
    return start + element.format("http://example.com/a") + rest


def _title_as_entry(text: str) -> str:
    if re.search(r"<(entry|item)\b", text):
        return text
    tag = "item" if re.search(r"<(rss|rdf:RDF)\b", text) else "entry"
    return re.sub(r"(<title\b[^>]*>[\s\S]*?</title>)", rf"<{tag}>\1</{tag}>", text, count=1)


def load(path: Path) -> Case:
    head = path.read_bytes()[:4000]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    if head.startswith(b"\x4c\x6f"):  # EBCDIC: the header is in the same code page
        text = head.decode("cp037")
    comment = text.split("-->", 1)[0] if "<!--" in text else ""
    if "Description:" not in comment and "-->" in text:  # the validator's first comment is an Id
        comment = text.split("-->", 2)[1] if text.count("-->") > 1 else comment
    fields: dict[str, str] = {}
    headers: dict[str, str] = {}
    for name, value in _FIELD_RE.findall(comment):
        if name == "Header":
            key, _, val = value.partition(":")
            headers[key.strip().lower()] = val.strip()
        else:
            fields[name] = value.strip()
    return Case(path, fields.get("Description", ""), fields.get("Expect", ""), headers)


CASES = [load(p) for p in FILES]
