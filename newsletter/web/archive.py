"""`newsletter archive`: the sent editions as a static site with Atom feeds, ready for public/."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from babel import Locale, UnknownLocaleError

from newsletter.cli.main import config_of, open_store
from newsletter.compose.drafts import check_issue_id
from newsletter.compose.personalise import Recipient, personalise_html
from newsletter.compose.render import issue_label, view_online_url
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, direction, gettext_for, translations
from newsletter.model import Edition
from newsletter.store.db import Db

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

    @property
    def language(self) -> str:
        return self.edition.language


@dataclass(frozen=True)
class Group:
    """One language's issues, newest first: a section of the index, a page and a feed."""

    language: str
    name: str
    direction: str
    index_url: str
    feed_url: str
    editions: tuple[Published, ...]


def published_editions(conn: Db, config: Config) -> list[Published]:
    """Every frozen edition (an issue whose send has begun): newest issue first, then the
    default language, then the others alphabetically."""
    found = []
    for row in conn.execute("SELECT * FROM editions"):
        check_issue_id(row["issue"])
        if not _LANGUAGE_RE.match(row["language"]):  # it becomes a folder name
            raise InputError(f"edition {row['issue']}: bad language {row['language']!r}",
                             where=str(config.store_path))
        edition = Edition(*(row[k] for k in ("issue", "language", "subject", "preheader",
                                             "html", "text", "fallback_name")))
        # No personal data: the generic greeting, and the footer link leads to the subscribe page.
        html = personalise_html(edition.html, Recipient("", f"{config.base_url}/subscribe"),
                                edition.fallback_name)
        found.append(Published(edition, datetime.fromisoformat(row["frozen_at"]),
                               view_online_url(config, edition.issue, edition.language), html))
    found.sort(key=lambda p: _language_key(config, p.language))
    return sorted(found, key=lambda p: p.edition.issue, reverse=True)  # stable: keeps that


def build_archive(config: Config, published: list[Published], out: Path) -> list[Group]:
    """Write the whole site into a fresh folder beside OUT, then put it in OUT's place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700: the web server could not read it
        groups = write_site(config, published, staging)
        _swap(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, jinja2.TemplateError):
            raise InputError(f"template error: {exc}",
                             where=str(config.templates_dir / "archive")) from exc
        raise
    return groups


def write_site(config: Config, published: list[Published], root: Path) -> list[Group]:
    """The index, an index and a feed per language, and a page per edition, under ROOT."""
    env = _environment(config)
    groups = language_groups(config, published)
    _write(root / "index.html", index_page(config, env, groups))
    for group in groups:
        _write(root / group.language / "index.html",
               index_page(config, _environment(config, group.language), groups, group))
        _write(root / group.language / "feed.xml", atom_feed(config, group))
        if group.language == config.default_language:
            _write(root / "feed.xml", atom_feed(config, group, f"{config.base_url}/feed.xml"))
    macros: dict[str, Any] = {}  # the bar's words are in each edition's own language
    for pub in published:
        versions = [p for p in published if p.edition.issue == pub.edition.issue]
        if pub.language not in macros:
            macros[pub.language] = _environment(config, pub.language).get_template(
                "archive/edition.html.j2").module
        # At its view-online URL's path: public/ is served at base_url.
        _write(root / pub.url.removeprefix(config.base_url).strip("/") / "index.html",
               edition_page(config, macros[pub.language], pub, versions))
    (root / MARKER).write_text("written by `newsletter archive`; replaced on every run\n")
    return groups


def language_groups(config: Config, published: list[Published]) -> list[Group]:
    base = config.base_url
    languages = sorted({p.language for p in published}, key=partial(_language_key, config))
    return [Group(lang, _autonym(lang), direction(lang), f"{base}/{lang}/",
                  f"{base}/{lang}/feed.xml", tuple(p for p in published if p.language == lang))
            for lang in languages]


def index_page(config: Config, env: jinja2.Environment, groups: list[Group],
               group: Group | None = None) -> str:
    """The whole archive's index (in the default language), or one language's (GROUP, in
    that language: ENV must carry its catalog)."""
    index = env.get_template("archive/index.html.j2")
    if group is None:
        language = config.default_language
        _ = gettext_for(language)
        return index.render(language=language, groups=groups, direction=direction(language),
                            title=_("Archive"), full=True,
                            organisation=config.text_in("organisation", language))
    _ = gettext_for(group.language)
    return index.render(language=group.language, direction=group.direction, groups=[group],
                        title=_("Archive: %(language)s") % {"language": group.name}, full=False,
                        organisation=config.text_in("organisation", group.language))


def _environment(config: Config, language: str = "") -> jinja2.Environment:
    """The archive's templates with LANGUAGE's catalog (default: the newsletter's own)."""
    base = config.base_url
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(config.templates_dir),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.i18n"])
    # added by the jinja2.ext.i18n extension at runtime, unknown to the type stubs
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language or config.default_language), newstyle=True)
    env.filters.update(month=_month, autonym=_autonym)
    env.globals.update(newsletter=config, home=f"{base}/", subscribe=f"{base}/subscribe")
    return env


def served_file(config: Config, conn: Db, path: str) -> tuple[str, bytes] | None:
    """What `newsletter serve` answers for an archive path (under base_url): the same pages
    and feeds `archive` writes. Returns (mimetype, body), or None if there is no such page."""
    published = published_editions(conn, config)
    groups = {g.language: g for g in language_groups(config, published)}
    parts = [p for p in path.strip("/").split("/") if p]
    if parts in ([], ["index.html"]):
        return "text/html", index_page(config, _environment(config), list(groups.values())).encode()
    if parts == ["feed.xml"] and config.default_language in groups:
        return ATOM_TYPE, atom_feed(config, groups[config.default_language],
                                    f"{config.base_url}/feed.xml")
    if len(parts) in (1, 2) and parts[0] in groups and parts[1:] in ([], ["index.html"]):
        html = index_page(config, _environment(config, parts[0]), list(groups.values()),
                          groups[parts[0]])
        return "text/html", html.encode()
    if len(parts) == 2 and parts[0] in groups and parts[1] == "feed.xml":
        return ATOM_TYPE, atom_feed(config, groups[parts[0]])
    return None


ATOM_TYPE = "application/atom+xml"


def edition_page_for(config: Config, conn: Db, issue: str,
                     language: str) -> str | None:
    """The archive page of one edition, as `newsletter serve` shows it; None if not sent."""
    published = published_editions(conn, config)
    versions = [p for p in published if p.edition.issue == issue]
    pub = next((p for p in versions if p.language == language), None)
    if pub is None:
        return None
    macros = _environment(config, language).get_template("archive/edition.html.j2").module
    return edition_page(config, macros, pub, versions)


def edition_page(config: Config, macros: Any, pub: Published,
                 versions: list[Published]) -> str:
    """The edition's own HTML, with hreflang links in head and a language bar after <body>.
    MACROS: templates/archive/edition.html.j2 as a module."""
    default = next((v.url for v in versions if v.language == config.default_language), "")
    head = str(macros.head_links(versions, default))
    others = [v for v in versions if v is not pub]
    bar = "\n" + str(macros.bar(others, f"{config.base_url}/"))
    html = _HEAD_END.sub(lambda m: head + m.group(), pub.html, count=1)
    return _BODY_START.sub(lambda m: m.group() + bar, html, count=1)


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


def _language_key(config: Config, language: str) -> tuple[bool, str]:
    """The default language first, then the others alphabetically."""
    return language != config.default_language, language


def _autonym(language: str) -> str:
    """The language's name in itself: the publisher's list first, then Babel's."""
    try:
        name = LANGUAGES.get(language) or Locale.parse(language.replace("-", "_")).display_name
    except (UnknownLocaleError, ValueError):
        return language
    return (name or language)[:1].upper() + (name or language)[1:]


def _month(issue: str, language: str) -> str:
    try:
        return issue_label(issue, language)  # the masthead's own month: one pattern for both
    except ValueError:
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


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


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
    try:
        staging.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def cmd_archive(args: argparse.Namespace) -> int:
    from newsletter.cli.compose_commands import say  # commands imports this module to register it

    started = time.monotonic()
    config = config_of(args)
    out = Path(args.out) if getattr(args, "out", None) else config.root / "public"
    with open_store(config) as conn:
        published = published_editions(conn, config)
    groups = build_archive(config, published, out)
    langs = ", ".join(g.language for g in groups)
    if groups:
        say(f"  {out / 'index.html'} + {out / 'LANG/index.html'}: "
            f"{1 + len(groups)} index page(s) ({langs})")
        say(f"  {out / 'issues'}{os.sep}: {len(published)} edition page(s)")
        say(f"  {out / 'feed.xml'} + {out / 'LANG/feed.xml'}: {len(groups)} Atom feed(s) ({langs})")
    else:
        say(f"  {out / 'index.html'}: no issues published yet")
    say(f"archive: {len({p.edition.issue for p in published})} issue(s), {len(groups)} "
        f"language(s), {1 + len(groups) + len(published)} page(s), {len(groups)} feed(s) "
        f"in {out}{os.sep} in {time.monotonic() - started:.1f} s")
    return 0


def add_archive_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--out", metavar="DIR", help="the site's folder, replaced on each run "
                     "(default: public/ beside newsletter.toml)")
