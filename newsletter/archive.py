"""`newsletter archive`: the sent editions as a static site with Atom feeds, ready for public/."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date

from newsletter.cli import config_of, open_store
from newsletter.config import Config
from newsletter.drafts import check_issue_id
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, direction
from newsletter.personalise import Recipient, personalise_html
from newsletter.render import Edition, view_online_url

ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MARKER = ".newsletter-archive"  # only a folder holding this file is ever replaced
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$")  # as drafts.py accepts them
_HEAD_END = re.compile(r"</head\s*>", re.I)
_BODY_START = re.compile(r"<body\b[^>]*>", re.I)
_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.I | re.S)
# The hidden preheader of templates/base.html.j2: feed readers drop the style, then show it.
_PREHEADER = re.compile(r'<div style="display:none[^"]*">[^<]*</div>\s*')
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0, section 2.2


@dataclass(frozen=True)
class Published:
    """A frozen edition as the archive shows it: no personal data, at its view-online URL."""

    edition: Edition
    frozen_at: datetime
    url: str
    html: str  # the edition's HTML with the generic greeting and the subscribe link


@dataclass(frozen=True)
class Archive:
    issues: int
    languages: tuple[str, ...]
    index_pages: int
    edition_pages: int

    def lines(self, out: Path) -> list[str]:
        if not self.issues:
            return [f"  {out / 'index.html'}: no issues published yet"]
        langs = ", ".join(self.languages)
        return [f"  {out / 'index.html'} + {out / 'LANG/index.html'}: "
                f"{self.index_pages} index page(s) ({langs})",
                f"  {out / 'issues'}/: {self.edition_pages} edition page(s)",
                f"  {out / 'feed.xml'} + {out / 'LANG/feed.xml'}: "
                f"{len(self.languages)} Atom feed(s) ({langs})"]


def published_editions(conn: sqlite3.Connection, config: Config) -> list[Published]:
    """Every frozen edition (an issue whose send has begun), newest issue first."""
    rows = conn.execute("SELECT * FROM editions ORDER BY issue DESC, language").fetchall()
    found = []
    for row in rows:
        check_issue_id(row["issue"])
        if not _LANGUAGE_RE.match(row["language"]):  # it becomes a folder name
            raise InputError(f"edition {row['issue']}: bad language {row['language']!r}",
                             where=str(config.store_path))
        edition = Edition(issue=row["issue"], language=row["language"], subject=row["subject"],
                          preheader=row["preheader"], html=row["html"], text=row["text"],
                          fallback_name=row["fallback_name"])
        # No personal data: the generic greeting, and the footer link leads to the subscribe page.
        html = personalise_html(edition.html, Recipient("", f"{config.base_url}/subscribe"),
                                edition.fallback_name)
        found.append(Published(edition, datetime.fromisoformat(row["frozen_at"]),
                               view_online_url(config, edition.issue, edition.language), html))
    return found


def build_archive(config: Config, published: list[Published], out: Path) -> Archive:
    """Write the whole site into a fresh folder beside OUT, then put it in OUT's place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700: the web server could not read it
        archive = write_site(config, published, staging)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return archive


def write_site(config: Config, published: list[Published], root: Path) -> Archive:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(config.templates_dir),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    languages = _languages(config, published)
    by_language = {lang: [p for p in published if p.edition.language == lang]
                   for lang in languages}
    page = env.get_template("archive/index.html.j2")
    groups = [_group(config, lang, pubs) for lang, pubs in by_language.items()]
    _write(root / "index.html", page.render(_page(config, config.default_language, groups, "Archive")))
    for group in groups:
        _write(root / group.language / "index.html",
               page.render(_page(config, group.language, [group], f"Archive: {group.name}")))
        feed = by_language[group.language]
        _write(root / group.language / "feed.xml", atom_feed(config, group, feed))
        if group.language == config.default_language:
            _write(root / "feed.xml", atom_feed(config, group, feed, f"{config.base_url}/feed.xml"))
    macros = env.get_template("archive/edition.html.j2").module
    for pub in published:
        versions = [p for lang in languages for p in published
                    if p.edition.issue == pub.edition.issue and p.edition.language == lang]
        _write(root / _relative(config, pub.url) / "index.html",
               edition_page(config, macros, pub, versions))
    (root / MARKER).write_text("written by `newsletter archive`; replaced on every run\n")
    return Archive(len({p.edition.issue for p in published}), tuple(languages),
                   1 + len(groups), len(published))


def edition_page(config: Config, macros: Any, pub: Published,
                 versions: list[Published]) -> str:
    """The edition's own HTML, with hreflang links in head and a language bar after <body>.
    MACROS: templates/archive/edition.html.j2 as a module."""
    links = [_Link(v.edition.language, _autonym(v.edition.language), v.url) for v in versions]
    default = next((v.url for v in versions
                    if v.edition.language == config.default_language), "")
    head = str(macros.head_links(links, default))
    others = [link for link in links if link.language != pub.edition.language]
    bar = "\n" + str(macros.bar(others, f"{config.base_url}/"))
    html = _insert(_HEAD_END, pub.html, head, before=True)
    return _insert(_BODY_START, html, bar, before=False)


def atom_feed(config: Config, group: _Group, feed: list[Published], self_url: str = "") -> bytes:
    """RFC 4287: one entry per issue, content = the edition's body without personal data."""
    root = ET.Element("feed", {"xmlns": ATOM, XML_LANG: group.language})
    _text(root, "id", group.feed_url)  # the canonical address; feed.xml is an alias of one
    _text(root, "title", config.name if group.language == config.default_language
          else f"{config.name} ({group.name})")
    _text(root, "updated", _rfc3339(max(p.frozen_at for p in feed)))
    _text(ET.SubElement(root, "author"), "name", config.organisation)
    ET.SubElement(root, "link", rel="self", type="application/atom+xml",
                  href=self_url or group.feed_url)
    ET.SubElement(root, "link", rel="alternate", type="text/html", href=group.index_url)
    for pub in feed:
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


@dataclass(frozen=True)
class _Link:
    language: str
    name: str
    url: str


@dataclass(frozen=True)
class _Entry:
    issue: str
    month: str
    subject: str
    url: str


@dataclass(frozen=True)
class _Group:
    language: str
    name: str
    direction: str
    index_url: str
    feed_url: str
    entries: tuple[_Entry, ...]


def _group(config: Config, language: str, pubs: list[Published]) -> _Group:
    entries = tuple(_Entry(p.edition.issue, _month(p.edition.issue, language),
                           p.edition.subject, p.url) for p in pubs)
    return _Group(language, _autonym(language), direction(language),
                  f"{config.base_url}/{language}/", f"{config.base_url}/{language}/feed.xml",
                  entries)


def _page(config: Config, language: str, groups: list[_Group], title: str) -> dict:
    return {"newsletter": config, "language": language, "direction": direction(language),
            "title": title, "groups": groups, "home": f"{config.base_url}/",
            "subscribe": f"{config.base_url}/subscribe"}


def _languages(config: Config, published: list[Published]) -> list[str]:
    """The default language first, then the others alphabetically."""
    found = {p.edition.language for p in published}
    return sorted(found, key=lambda lang: (lang != config.default_language, lang))


def _relative(config: Config, url: str) -> str:
    """Where a view-online URL lives inside the site (public/ is served at base_url)."""
    return url.removeprefix(config.base_url).strip("/")


def _autonym(language: str) -> str:
    """The language's name in itself: the publisher's list first, then Babel's."""
    if language in LANGUAGES:
        return LANGUAGES[language]
    try:
        name = Locale.parse(language.replace("-", "_")).get_display_name() or language
    except (UnknownLocaleError, ValueError):
        return language
    return name[:1].upper() + name[1:]


def _month(issue: str, language: str) -> str:
    try:
        return format_date(date(int(issue[:4]), int(issue[5:]), 1), "MMMM y",
                           locale=language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return issue


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _NOT_XML.sub("", value)  # ElementTree escapes; it does not drop these
    return element


def _feed_body(html: str) -> str:
    match = _BODY.search(html)
    return _PREHEADER.sub("", match.group(1) if match else html, count=1).strip()


def _insert(pattern: re.Pattern[str], html: str, snippet: str, *, before: bool) -> str:
    match = pattern.search(html)
    if match is None:
        return snippet + html if not before else html
    at = match.start() if before else match.end()
    return html[:at] + snippet + html[at:]


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(data)


def _check_replaceable(out: Path) -> None:
    """Never delete a folder this command did not write (say --out pointed at the project)."""
    if out.exists() and not (out / MARKER).exists() and (
            not out.is_dir() or any(out.iterdir())):
        raise InputError(f"not written by `newsletter archive` (no {MARKER} file); "
                         "refusing to replace it: pick another --out or empty it", where=str(out))


def _swap(staging: Path, out: Path) -> None:
    """Two renames: OUT is missing for an instant, but never half written."""
    old = staging.with_name(staging.name + ".old")
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def cmd_archive(args: argparse.Namespace) -> int:
    from newsletter.commands import say  # commands imports this module to register it

    started = time.monotonic()
    config = config_of(args)
    out = Path(args.out) if getattr(args, "out", None) else config.root / "public"
    with open_store(config) as conn:
        published = published_editions(conn, config)
    archive = build_archive(config, published, out)
    for line in archive.lines(out):
        say(line)
    say(f"archive: {archive.issues} issue(s), {len(archive.languages)} language(s), "
        f"{archive.index_pages + archive.edition_pages} page(s), {len(archive.languages)} "
        f"feed(s) in {out}{os.sep} in {time.monotonic() - started:.1f} s")
    return 0


def add_archive_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--out", metavar="DIR", help="the site's folder, replaced on each run "
                     "(default: public/ beside newsletter.toml)")
