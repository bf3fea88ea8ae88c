"""The archive's Atom feeds (RFC 4287): one per language, an entry per issue."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urlsplit

from newsletter.config import Config
from newsletter.model import Edition
from newsletter.web.archive_pages import Group

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.I | re.S)
# The hidden preheader of templates/base.html.j2: feed readers drop the style, then show it.
_PREHEADER = re.compile(r'<div style="display:none[^"]*">[^<]*</div>\s*')
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0, section 2.2


def atom_feed(config: Config, group: Group, self_url: str = "") -> bytes:
    """RFC 4287: one entry per issue, content = the edition's body without personal data."""
    root = ET.Element("feed", {"xmlns": ATOM, XML_LANG: group.language})
    _text(root, "id", group.feed_url)  # the canonical address; feed.xml is an alias of one
    _text(root, "title", config.name if group.language == config.default_language
          else f"{config.name} ({group.name})")
    _text(root, "updated", _rfc3339(max(p.frozen_at for p in group.editions)))
    _text(ET.SubElement(root, "author"), "name", config.text_in("organisation", group.language))
    ET.SubElement(root, "link", rel="self", type="application/atom+xml",
                  href=self_url or group.feed_url)
    ET.SubElement(root, "link", rel="alternate", type="text/html", href=group.index_url)
    for pub in group.editions:
        entry = ET.SubElement(root, "entry")
        _text(entry, "id", entry_id(config, pub.edition))
        _text(entry, "title", pub.edition.subject)
        _text(entry, "published", _rfc3339(pub.frozen_at))
        _text(entry, "updated", _rfc3339(pub.frozen_at))
        ET.SubElement(entry, "link", rel="alternate", type="text/html", href=pub.url)
        _text(entry, "summary", pub.edition.preheader or pub.edition.subject)
        _text(entry, "content", _feed_body(pub.html)).set("type", "html")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def entry_id(config: Config, edition: Edition) -> str:
    """RFC 4151 tag URI: stable whatever the pages' addresses become."""
    parts = urlsplit(config.base_url)
    path = parts.path.strip("/")
    return (f"tag:{parts.hostname},{edition.issue[:4]}:{path + '/' if path else ''}"
            f"issue-{edition.issue}-{edition.language}")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _NOT_XML.sub("", value)  # ElementTree escapes; it does not drop these
    return element


def _feed_body(html: str) -> str:
    match = _BODY.search(html)
    return _PREHEADER.sub("", match.group(1) if match else html, count=1).strip()
