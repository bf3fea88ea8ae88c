"""The public archive: sent editions as a static site and Atom feeds, with no personal data."""

from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import html5lib
import pytest
from conftest_delivery import REPO, make_delivery_project

from newsletter.cli.web_commands import cmd_archive
from newsletter.compose.edition import compose
from newsletter.compose.render import view_online_url
from newsletter.config import Config, load_config
from newsletter.deliver import ledger
from newsletter.errors import InputError
from newsletter.i18n import gettext_for
from newsletter.model import Edition
from newsletter.store.connect import database_url, open_store
from newsletter.store.editions import frozen_languages
from newsletter.web.archive_feed import entry_id

ATOM = "{http://www.w3.org/2005/Atom}"
XHTML = "{http://www.w3.org/1999/xhtml}"
NOVEMBER = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 6, 7, 30, tzinfo=UTC)
DRAFTS = {
    "2026-11.fr.md": ("Exporter bientôt ? Protégez votre marque avant d'expédier",
                      "Pourquoi déposer votre marque à l'étranger d'abord.",
                      "Bienvenue dans le numéro de novembre.\n\n## Les marques à l'export\n\n"
                      "Déposez avant d'expédier."),
    "2026-11.ar.md": ("التصدير قريبًا؟ احمِ علامتك التجارية قبل الشحن",
                      "لماذا تسجل علامتك التجارية في الخارج أولًا.",
                      "مرحبًا بكم في عدد نوفمبر.\n\n## العلامات التجارية للمصدرين\n\n"
                      "سجّل قبل الشحن."),
    "2026-10.md": ("Trade secrets: what to keep quiet, and how",
                   "Confidentiality agreements & <what> they cover.",
                   "Welcome to the October issue.\n\n## Trade secrets\n\nKeep them secret."),
}


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Edition]:
    """The sample issue rendered for real in en, fr and ar, and an earlier issue in en only."""
    project = make_delivery_project(tmp_path_factory.mktemp("render") / "nl", 1)
    issues = project.root / "issues"
    for name, (subject, preheader, body) in DRAFTS.items():
        (issues / name).write_text(f'---\nsubject: "{subject}"\npreheader: "{preheader}"\n'
                                   f"status: ready\nsend_at: {name[:7]}-05T09:00\n---\n\n{body}\n",
                                   encoding="utf-8")
        shutil.copy(issues / "2026-11.items.yaml", issues / name.replace(".md", ".items.yaml"))
    config = load_config(project.config)
    with open_store(database_url(config)) as conn:
        rendered = [compose(config, issues / name, conn).edition
                    for name in ("2026-11.md", *DRAFTS)]
    return {(e.issue, e.language): e for e in rendered}


def publish(conn: sqlite3.Connection, edition: Edition, frozen_at: datetime) -> None:
    """Freeze an edition as a send does when it begins."""
    ledger.freeze(conn, edition, [], frozen_at)
    if edition.language not in frozen_languages(conn, edition.issue):
        # ledger.freeze stores one edition per issue (is_frozen asks about the issue only);
        # until it freezes each language edition, store the others' rows as it would.
        conn.execute("INSERT INTO editions (issue, language, subject, preheader, html, text, "
                     "fallback_name, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (edition.issue, edition.language, edition.subject, edition.preheader,
                      edition.html, edition.text, edition.fallback_name, frozen_at.isoformat()))


class Site:
    """A project with published editions; run() writes its archive."""

    def __init__(self, root: Path) -> None:
        self.project = make_delivery_project(root, 1)
        self.config: Config = load_config(self.project.config)
        self.public = self.project.root / "public"

    def publish(self, *found: tuple[Edition, datetime]) -> None:
        with open_store(database_url(self.config)) as conn:
            for edition, frozen_at in found:
                publish(conn, edition, frozen_at)

    def run(self, out: Path | None = None) -> int:
        return cmd_archive(argparse.Namespace(config=self.project.config,
                                              out=str(out) if out else None))

    def file(self, url: str) -> Path:
        """The file a public URL resolves to when public/ is served at base_url's path."""
        prefix = urlsplit(self.config.base_url).path
        path = urlsplit(url).path.removeprefix(prefix).strip("/")
        target = self.public / path
        return target / "index.html" if not path.endswith((".xml", ".html")) else target

    def text(self, relative: str) -> str:
        return (self.public / relative).read_text(encoding="utf-8")

    def feed(self, relative: str) -> feedparser.FeedParserDict:
        return feedparser.parse((self.public / relative).read_bytes())


@pytest.fixture
def site(tmp_path: Path, editions: dict[tuple[str, str], Edition]) -> Site:
    result = Site(tmp_path / "nl")
    result.publish(*[(e, NOVEMBER) for key, e in editions.items() if key[0] == "2026-11"],
                   (editions["2026-10", "en"], OCTOBER))
    assert result.run() == 0
    return result


def parse_strict(path: Path) -> ET.Element:
    try:
        return html5lib.HTMLParser(strict=True).parse(path.read_text(encoding="utf-8"))
    except html5lib.html5parser.ParseError as exc:
        pytest.fail(f"{path}: not valid HTML5 syntax: {exc}")


def elements(tree: ET.Element, tag: str, **attrs: str) -> list[ET.Element]:
    return [e for e in tree.iter(f"{XHTML}{tag}")
            if all(e.get(k) == v for k, v in attrs.items())]


def test_every_page_parses_as_html5_without_a_single_error(site: Site) -> None:
    pages = sorted(site.public.rglob("*.html"))
    assert len(pages) == 8  # the index, 3 language indexes, 4 editions
    for page in pages:
        parse_strict(page)


def test_each_edition_is_at_its_view_online_url(site: Site,
                                                editions: dict[tuple[str, str], Edition]) -> None:
    for (issue, language), edition in editions.items():
        page = site.file(view_online_url(site.config, issue, language))
        assert page.is_file(), page
        assert f"<title>{edition.subject}</title>" in page.read_text(encoding="utf-8")
    assert site.file(view_online_url(site.config, "2026-11", "en")) == \
        site.public / "issues" / "2026-11" / "index.html"


def test_no_page_or_feed_carries_personal_data_or_placeholders(site: Site) -> None:
    for path in [*site.public.rglob("*.html"), *site.public.rglob("*.xml")]:
        text = path.read_text(encoding="utf-8")
        assert "__NL_" not in text, path
        assert "/unsubscribe/" not in text, path
    page = site.text("issues/2026-11/index.html")
    assert "Dear reader," in page
    assert 'href="https://ipbusiness.example.org/newsletter/subscribe"' in page


def test_arabic_pages_are_right_to_left(site: Site) -> None:
    for relative in ("ar/index.html", "issues/2026-11/ar/index.html"):
        html = parse_strict(site.public / relative)
        assert (html.get("lang"), html.get("dir")) == ("ar", "rtl"), relative
    for relative in ("fr/index.html", "issues/2026-11/fr/index.html"):
        html = parse_strict(site.public / relative)
        assert (html.get("lang"), html.get("dir")) == ("fr", "ltr"), relative
    index = parse_strict(site.public / "index.html")
    assert [(s.get("lang"), s.get("dir")) for s in elements(index, "section")] == [
        ("en", "ltr"), ("ar", "rtl"), ("fr", "ltr")]


def test_an_edition_page_links_its_other_languages_and_the_archive(site: Site) -> None:
    base = site.config.base_url
    page = parse_strict(site.public / "issues/2026-11/fr/index.html")
    alternates = {link.get("hreflang"): link.get("href")
                  for link in elements(page, "link", rel="alternate")}
    assert alternates == {"en": f"{base}/issues/2026-11", "fr": f"{base}/issues/2026-11/fr",
                          "ar": f"{base}/issues/2026-11/ar", "x-default": f"{base}/issues/2026-11"}
    body = page.find(f"{XHTML}body")
    nav = body[0]  # right after <body>
    assert nav.tag == f"{XHTML}nav"
    links = [(a.get("href"), a.get("hreflang"), a.get("lang"), a.text) for a in nav]
    # The bar speaks the page's language: the French page's "All issues" is French.
    all_issues = gettext_for("fr")("All issues")
    assert all_issues != "All issues"
    assert links == [(f"{base}/", None, None, all_issues),
                     (f"{base}/issues/2026-11", "en", "en", "English"),
                     (f"{base}/issues/2026-11/ar", "ar", "ar", "العربية")]
    assert all(site.file(href).is_file() for href, *_ in links)
    october = parse_strict(site.public / "issues/2026-10/index.html")
    nav = october.find(f"{XHTML}body")[0]
    assert [a.text for a in nav] == ["All issues"]  # one language: only the way back


def test_the_index_lists_issues_newest_first_in_a_section_per_language(site: Site) -> None:
    base = site.config.base_url
    index = parse_strict(site.public / "index.html")
    feeds = elements(index, "link", rel="alternate", type="application/atom+xml")
    assert [(f.get("hreflang"), f.get("href")) for f in feeds] == [
        (lang, f"{base}/{lang}/feed.xml") for lang in ("en", "ar", "fr")]
    sections = {s.get("lang"): s for s in elements(index, "section")}
    english = [(t.get("datetime"), t.text) for t in elements(sections["en"], "time")]
    assert english == [("2026-11", "November 2026"), ("2026-10", "October 2026")]
    assert [t.text for t in elements(sections["fr"], "time")] == ["novembre 2026"]
    titles = [a.text for a in elements(sections["en"], "a") if a.get("hreflang") == "en"]
    assert titles == ["Exporting soon? Protect your brand before you ship",
                      "Trade secrets: what to keep quiet, and how"]
    feed_links = [a.get("href") for a in elements(index, "a", type="application/atom+xml")]
    assert feed_links == [f"{base}/{lang}/feed.xml" for lang in ("en", "ar", "fr")]
    french = parse_strict(site.public / "fr/index.html")
    assert [a.text for a in elements(french, "a", hreflang="fr")] == [
        "Exporter bientôt ? Protégez votre marque avant d'expédier"]
    assert "Trade secrets" not in site.text("fr/index.html")


def test_each_language_has_a_valid_atom_feed(site: Site,
                                             editions: dict[tuple[str, str], Edition]) -> None:
    base = site.config.base_url
    english = site.feed("en/feed.xml")
    assert english.bozo == 0 and english.version == "atom10"
    assert english.feed.id == f"{base}/en/feed.xml"
    assert english.feed.title == "IP for Business"
    assert english.feed.updated == "2026-11-05T08:00:00Z"
    assert english.feed.author == site.config.organisation
    links = {link.rel: link.href for link in english.feed.links}
    assert links == {"self": f"{base}/en/feed.xml", "alternate": f"{base}/en/"}
    assert [e.id for e in english.entries] == [
        "tag:ipbusiness.example.org,2026:newsletter/issue-2026-11-en",
        "tag:ipbusiness.example.org,2026:newsletter/issue-2026-10-en"]
    october = english.entries[1]
    assert october.title == "Trade secrets: what to keep quiet, and how"
    assert october.link == f"{base}/issues/2026-10"
    assert october.published == october.updated == "2026-10-06T07:30:00Z"
    assert october.summary == "Confidentiality agreements & <what> they cover."
    assert october.content[0].type == "text/html"
    assert "Dear reader," in october.content[0].value
    arabic = site.feed("ar/feed.xml")
    assert arabic.bozo == 0 and arabic.feed.language == "ar"
    assert arabic.feed.title == "IP for Business (العربية)"
    assert [(e.title, e.link) for e in arabic.entries] == [
        (editions["2026-11", "ar"].subject, f"{base}/issues/2026-11/ar")]


def test_feeds_have_every_element_rfc_4287_requires(site: Site) -> None:
    for relative in ("feed.xml", "en/feed.xml", "fr/feed.xml", "ar/feed.xml"):
        feed = ET.fromstring((site.public / relative).read_bytes())
        assert feed.tag == f"{ATOM}feed"
        for tag in ("id", "title", "updated", "author/" + ATOM + "name"):
            assert len(feed.findall(f"{ATOM}{tag}")) == 1, (relative, tag)
        for entry in feed.findall(f"{ATOM}entry"):
            for tag in ("id", "title", "updated", "published", "summary", "content"):
                assert len(entry.findall(f"{ATOM}{tag}")) == 1, (relative, tag)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                                entry.findtext(f"{ATOM}updated"))
            content = entry.find(f"{ATOM}content")
            assert content.get("type") == "html"
            # The body only: no document around it, no hidden preheader for readers to show.
            assert "<body" not in content.text and "display:none" not in content.text


def test_the_default_language_feed_is_also_at_the_top(site: Site) -> None:
    top, english = site.feed("feed.xml"), site.feed("en/feed.xml")
    assert top.bozo == 0
    assert top.feed.id == english.feed.id  # the same feed at a second address
    assert {link.rel: link.href for link in top.feed.links}["self"] == \
        f"{site.config.base_url}/feed.xml"
    assert [e.id for e in top.entries] == [e.id for e in english.entries]


def test_entry_ids_and_feeds_are_the_same_on_every_run(site: Site) -> None:
    before = {p.name + str(p.parent): p.read_bytes() for p in site.public.rglob("feed.xml")}
    ids = [e.id for e in site.feed("fr/feed.xml").entries]
    assert site.run() == 0
    after = {p.name + str(p.parent): p.read_bytes() for p in site.public.rglob("feed.xml")}
    assert after == before
    assert [e.id for e in site.feed("fr/feed.xml").entries] == ids
    edition = Edition("2026-11", "fr", "", "", "", "", "")
    assert ids == [entry_id(site.config, edition)]


def test_a_second_run_replaces_the_whole_site(site: Site) -> None:
    stray = site.public / "issues" / "2026-10" / "left-over.html"
    stray.write_text("old", encoding="utf-8")
    with sqlite3.connect(site.config.store_path) as conn:
        conn.execute("DELETE FROM editions WHERE issue = '2026-10'")
    assert site.run() == 0
    assert not (site.public / "issues" / "2026-10").exists()
    assert [e.id for e in site.feed("en/feed.xml").entries] == [
        "tag:ipbusiness.example.org,2026:newsletter/issue-2026-11-en"]
    assert "Trade secrets" not in site.text("index.html")
    # Nothing left beside public/ from building it.
    assert sorted(p.name for p in site.public.parent.iterdir() if "public" in p.name) == [
        "public"]


def test_a_failed_build_leaves_the_published_site_alone(site: Site) -> None:
    before = site.text("index.html")
    (site.project.root / "templates" / "archive" / "index.html.j2").write_text(
        "{{ no_such_variable }}", encoding="utf-8")
    with pytest.raises(InputError, match="template error: 'no_such_variable' is undefined"):
        site.run()
    assert site.text("index.html") == before
    assert [p.name for p in site.public.parent.iterdir() if "public" in p.name] == ["public"]


def test_the_command_prints_each_file_group_and_a_summary(
        site: Site, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    out = site.project.root / "site"
    assert site.run(out) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"  {out}/index.html + {out}/LANG/index.html: 4 index page(s) (en, ar, fr)"
    assert lines[1] == f"  {out}/issues/: 4 edition page(s)"
    assert lines[2] == f"  {out}/feed.xml + {out}/LANG/feed.xml: 3 Atom feed(s) (en, ar, fr)"
    assert re.fullmatch(rf"archive: 2 issue\(s\), 3 language\(s\), 8 page\(s\), 3 feed\(s\) "
                        rf"in {re.escape(str(out))}/ in \d+\.\d s", lines[3])
    assert len(lines) == 4
    assert (out / "issues" / "2026-11" / "ar" / "index.html").is_file()


def test_with_no_issues_yet_the_index_says_so(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    site = Site(tmp_path / "nl")
    assert site.run() == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        "archive: 0 issue(s), 0 language(s), 1 page(s), 0 feed(s) in ")
    parse_strict(site.public / "index.html")
    assert "No issues have been published yet" in site.text("index.html")
    assert sorted(p.name for p in site.public.iterdir()) == [".newsletter-archive", "index.html"]


def test_text_from_drafts_is_escaped_in_pages_and_feeds(
        tmp_path: Path, editions: dict[tuple[str, str], Edition]) -> None:
    site = Site(tmp_path / "nl")
    tricky = 'Fish & chips <script>alert("x")</script> ]]>'
    october = editions["2026-10", "en"]
    # Drafts refuse control characters, feed items may still carry one; XML 1.0 cannot.
    html = october.html.replace("Keep them secret.", "Keep them\x0b secret.")
    site.publish((replace(october, subject=tricky, html=html), OCTOBER))
    assert site.run() == 0
    parse_strict(site.public / "index.html")
    assert "<script>" not in site.text("index.html")
    feed = site.feed("feed.xml")
    assert feed.bozo == 0
    assert feed.entries[0].title == tricky
    assert "Keep them secret." in feed.entries[0].content[0].value


def test_it_will_not_replace_a_folder_it_did_not_write(site: Site) -> None:
    precious = site.project.root / "issues"
    with pytest.raises(InputError, match="refusing to replace it"):
        site.run(precious)
    assert (precious / "2026-11.md").is_file()


def test_the_archive_templates_ship_with_the_project() -> None:
    names = {p.name for p in (REPO / "templates" / "archive").iterdir()}
    assert {"base.html.j2", "index.html.j2", "edition.html.j2", "archive.css"} <= names
