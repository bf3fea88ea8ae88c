"""Everything a reader sees is in their language: the edition, serve's pages over real HTTP,
the archive and the confirmation mail, in each of the six languages.

The English UI strings are the catalog's own msgids (newsletter/locale/messages.pot); each
page's English rendering shows some of them, and none of those may remain in the same page
in another language. Dates go through the locale (no English month names), the catalogs
are complete, and the sentences that embed an organisation read right.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import sqlite3
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from conftest import front_matter
from conftest_delivery import REPO
from web_server import running_app

from newsletter.audience.tokens import make_token
from newsletter.compose.drafts import load_draft
from newsletter.compose.feeds import FeedItem
from newsletter.compose.personalise import Recipient, personalise_html
from newsletter.compose.render import render_edition, view_online_url
from newsletter.config import Config, load_config
from newsletter.i18n import LOCALE_DIR, direction, gettext_for
from newsletter.model import Edition
from newsletter.web.archive import write_site
from newsletter.web.archive_pages import Published
from newsletter.web.mail import build_confirmation, confirmation_subject
from newsletter.web.optin import confirm_token

LANGUAGES = ("en", "ar", "es", "fr", "ru", "zh")
TRANSLATED = LANGUAGES[1:]
ISSUE = "2027-01"
PREFIX = "/newsletter"
SECRET = "test-secret"
LIST_ID = "ip-for-business.ipbusiness.example.org"
# The editor's own words in each language: content, not UI, and never English.
CONTENT = {
    "en": ("January news", "A word from the editors.", "Hello from the editors."),
    "ar": ("أخبار يناير", "كلمة من فريق التحرير.", "تحية من فريق التحرير."),
    "es": ("Novedades de enero", "Unas palabras de la redacción.", "Saludos de la redacción."),
    "fr": ("Les nouvelles de janvier", "Un mot de la rédaction.", "Bonjour de la rédaction."),
    "ru": ("Новости января", "Слово редакции.", "Привет от редакции."),
    "zh": ("一月新闻", "编辑部的话。", "编辑部向您问好。"),
}
MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|"
          "December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


# --- what a reader sees of a page ---------------------------------------------------------


class _Visible(HTMLParser):
    """Text nodes and the attributes a reader sees or hears (not URLs, names or styles)."""

    SHOWN = ("aria-label", "title", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        self.parts.extend(v for k, v in attrs if k in self.SHOWN and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def ui_fragments() -> list[str]:
    """The English words of the catalog: each msgid cut at its placeholders, the pieces a
    reader would recognise (several words, or one long word)."""
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = read_po(f)
    pieces: set[str] = set()
    for message in pot:
        if not message.id or not isinstance(message.id, str):
            continue
        for piece in re.split(r"%\(\w+\)[sd]", message.id):
            piece = piece.strip(" .,:;()—-")
            if (" " in piece and len(piece) >= 6) or (len(piece) >= 6 and piece.isalpha()):
                pieces.add(piece)
    return sorted(pieces)


def english_ui_in(text: str, fragments: list[str]) -> list[str]:
    return [f for f in fragments if re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)]


# --- one project, every page in every language ----------------------------------------------


def _draft(root: Path, language: str) -> Path:
    subject, preheader, body = CONTENT[language]
    suffix = "" if language == "en" else f".{language}"
    path = root / "issues" / f"{ISSUE}{suffix}.md"
    path.write_text(front_matter(subject=subject, preheader=preheader, status="ready",
                                 send_at=f"{ISSUE}-05T09:00") + body + "\n", encoding="utf-8")
    return path


def _items(config: Config, language: str) -> tuple[FeedItem, ...]:
    """A news item with a publication date and an event whose date is in its (English)
    feed title, as the sample events feed writes it."""
    news, events = config.feeds[0], config.feeds[1]
    return (
        FeedItem("n-1", "Startup IP clinic opens in Zürich", "https://news.example.org/1",
                 "<p>A clinic.</p>", datetime(2026, 12, 14, 9, 0, tzinfo=UTC), news.name,
                 news.section_in(language), "news"),
        FeedItem("e-1", "21 January 2027 — Webinar: Trademarks for exporters",
                 "https://events.example.org/1", "<p>Online.</p>",
                 datetime(2026, 12, 1, 9, 0, tzinfo=UTC), events.name,
                 events.section_in(language), "events"),
    )


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """{language: {page: what the reader sees}} for every page of the six languages."""
    root = tmp_path_factory.mktemp("reader-language") / "nl"
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "issues").mkdir()
    (root / "newsletter.toml").write_text(
        (REPO / "newsletter.toml").read_text(encoding="utf-8"), encoding="utf-8")
    shutil.copytree(REPO / "feeds", root / "feeds")
    (root / "subscribers").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEWSLETTER_SECRET", SECRET)
        env.delenv("NEWSLETTER_SMTP_URL", raising=False)
        config = load_config(root / "newsletter.toml")
        pages: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        editions = {}
        for lang in LANGUAGES:
            draft = load_draft(_draft(root, lang), timezone=config.timezone,
                               default_language=config.default_language)
            edition = render_edition(config, draft, _items(config, lang))
            editions[lang] = edition
            pages[lang]["email html"] = visible(edition.html)
            pages[lang]["email text"] = edition.text
            pages[lang]["html tag"] = re.search(r"<html[^>]*>", edition.html)[0]
            mail = email.message_from_bytes(build_confirmation(
                config, f"new-{lang}@example.org", lang, "https://x.example/confirm/t",
                "https://x.example/unsubscribe/t", datetime(2027, 1, 2, tzinfo=UTC)),
                policy=email.policy.default)
            pages[lang]["confirm subject"] = str(mail["Subject"])
            pages[lang]["confirm html"] = visible(mail.get_body(("html",)).get_content())
            pages[lang]["confirm text"] = mail.get_body(("plain",)).get_content()
        _archive(config, editions, root / "public", pages)
        rows = ["email,name,language,tags"] + [f"reader-{lang}@example.org,,{lang},"
                                                for lang in LANGUAGES]
        csv = root / "subscribers" / "readers.csv"
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        from newsletter.cli.main import main

        assert main(["--config", str(root / "newsletter.toml"), "subscribers", "import",
                     str(csv)]) == 0
        with running_app(root / "newsletter.toml") as origin:
            for lang in LANGUAGES:
                _web_pages(origin, lang, pages[lang], root / "newsletter.db")
    return pages


def _archive(config: Config, editions: dict[str, Edition], out: Path,
             pages: dict[str, dict[str, str]]) -> None:
    published = []
    for lang, edition in editions.items():
        html = personalise_html(edition.html, Recipient("", f"{config.base_url}/subscribe"),
                                edition.fallback_name)
        published.append(Published(edition, datetime(2027, 1, 5, 9, tzinfo=UTC),
                                   view_online_url(config, ISSUE, lang), html))
    out.mkdir(parents=True)
    write_site(config, published, out)
    for lang in LANGUAGES:
        index = (out / lang / "index.html").read_text(encoding="utf-8")
        page = view_online_url(config, ISSUE, lang).removeprefix(config.base_url).strip("/")
        edition_page = (out / page / "index.html").read_text(encoding="utf-8")
        pages[lang]["archive index"] = visible(index)
        pages[lang]["archive index tag"] = re.search(r"<html[^>]*>", index)[0]
        # The bar the archive adds after <body>: the edition itself is checked above.
        pages[lang]["archive bar"] = visible(re.search(r"<nav.*?</nav>", edition_page, re.S)[0])


def _confirm_url(origin: str, db: Path, address: str) -> str:
    """The confirm link the confirmation mail to ADDRESS carries (the request is stored)."""
    with sqlite3.connect(db) as conn:
        [public_id] = conn.execute("SELECT public_id FROM optin_requests WHERE email = ?",
                                   (address,)).fetchone()
    return f"{origin}{PREFIX}/confirm/{confirm_token(SECRET, LIST_ID, public_id)}"


def _web_pages(origin: str, lang: str, into: dict[str, str], db: Path) -> None:
    token = make_token(SECRET, LIST_ID, f"reader-{lang}@example.org")
    answers = {
        "subscribe": httpx.get(f"{origin}{PREFIX}/subscribe?lang={lang}"),
        "form error": httpx.post(f"{origin}{PREFIX}/subscribe?lang={lang}",
                                 data={"email": "not an address", "language": lang}),
        # No ?lang=: the subscriber's own language, from the token.
        "preferences": httpx.get(f"{origin}{PREFIX}/preferences/{token}"),
        "preferences error": httpx.post(f"{origin}{PREFIX}/preferences/{token}",
                                        data={"name": "", "language": "not a language!"}),
        # No ?lang= and no subscriber: the browser's Accept-Language.
        "404": httpx.get(f"{origin}{PREFIX}/no-such-page",
                         headers={"Accept-Language": f"{lang};q=0.9, de;q=0.8"}),
        "404 by lang": httpx.get(f"{origin}{PREFIX}/issues/2031-01?lang={lang}"),
        "check inbox": httpx.post(f"{origin}{PREFIX}/subscribe?lang={lang}",
                                  data={"email": f"new-{lang}@example.org", "language": lang}),
        # No ?lang=: the language the form asked for, stored with the request.
        "confirm": httpx.get(_confirm_url(origin, db, f"new-{lang}@example.org")),
        "invalid link": httpx.get(f"{origin}{PREFIX}/unsubscribe/not-a-token?lang={lang}"),
        "expired link": httpx.get(f"{origin}{PREFIX}/confirm/not.a-token?lang={lang}"),
        "unsubscribe": httpx.get(f"{origin}{PREFIX}/unsubscribe/{token}"),
        # Last: it unsubscribes the reader.
        "unsubscribed": httpx.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                                   data={"List-Unsubscribe": "One-Click"}),
    }
    expected = {"form error": 422, "preferences error": 422, "404": 404, "404 by lang": 404,
                "invalid link": 400, "expired link": 400}
    for page, reply in answers.items():
        assert reply.status_code == expected.get(page, 200), (lang, page, reply.text[:300])
        into[f"web {page}"] = visible(reply.text)
        into[f"web {page} tag"] = re.search(r"<html[^>]*>", reply.text)[0]


# --- the tests ---------------------------------------------------------------------------------


def _pages(seen: dict[str, dict[str, str]]) -> list[str]:
    return [page for page in seen["en"] if not page.endswith("tag")]


def test_every_page_shows_no_english_ui_string_in_the_other_five_languages(seen) -> None:
    fragments = ui_fragments()
    left = {}
    for page in _pages(seen):
        english = english_ui_in(seen["en"][page], fragments)
        assert english, f"the English {page} shows none of the catalog's strings"
        for lang in TRANSLATED:
            if found := [f for f in english if f in english_ui_in(seen[lang][page], english)]:
                left[(lang, page)] = found
    assert not left, left


def test_html_lang_and_dir_follow_the_page_language(seen) -> None:
    for lang in LANGUAGES:
        for page, tag in seen[lang].items():
            if page.endswith("tag"):
                assert f'lang="{lang}"' in tag and f'dir="{direction(lang)}"' in tag, (page, tag)
    assert direction("ar") == "rtl"


def test_dates_use_the_locale_patterns_and_no_english_month_names(seen) -> None:
    assert "январь 2027" in seen["ru"]["email html"]  # standalone nominative, not "января"
    assert "2027年1月" in seen["zh"]["email html"]
    assert "janvier 2027" in seen["fr"]["email html"]
    assert "January 2027" in seen["en"]["email html"]
    # The event's date, written in English in its feed title, is in the edition's language.
    assert "21 يناير 2027" in seen["ar"]["email html"]
    assert "2027年1月21日" in seen["zh"]["email text"]
    for lang in TRANSLATED:
        for page in ("email html", "email text", "archive index"):
            # "Startup" and "Trademarks" are feed text; a month name would be ours.
            assert not re.search(rf"\b({MONTHS})\b", seen[lang][page]), (lang, page)


def test_sentences_with_the_organisation_read_right_in_french(seen) -> None:
    for page, text in seen["fr"].items():
        assert not re.search(r"\b(de|à) (le|les)\b", text), (page, text)
    assert "publiée par le programme PME" in seen["fr"]["email html"]


def test_the_confirmation_subject_is_in_every_language() -> None:
    config = load_config(REPO / "newsletter.toml")
    subjects = {lang: confirmation_subject(config, lang) for lang in LANGUAGES}
    assert len(set(subjects.values())) == len(LANGUAGES), subjects
    assert all(config.name in s for s in subjects.values())


def test_the_catalogs_translate_every_string_the_code_and_templates_use() -> None:
    """Extracted as `make messages` does, from the working tree; no entry may be
    untranslated or fuzzy, and every translation keeps its placeholders."""
    found = [*extract_from_dir(REPO / "newsletter", method_map=[("**.py", "python")]),
             *extract_from_dir(REPO / "templates", method_map=[("**.j2", "jinja2")],
                               options_map={"**.j2": {"extensions": "jinja2.ext.i18n"}})]
    extracted = {msgid if isinstance(msgid, str) else msgid[0]
                 for _file, _line, msgid, _comments, _context in found}
    assert len(extracted) > 50
    problems = []
    for lang in TRANSLATED:
        with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = read_po(f, locale=lang)
        for msgid in sorted(extracted):
            message = catalog.get(msgid)
            if message is None or not message.string or message.fuzzy:
                problems.append(f"{lang}: {msgid!r} is not translated")
        problems.extend(f"{lang}: {m.id!r} is fuzzy or empty in the catalog" for m in catalog
                        if m.id and m.id not in extracted and (m.fuzzy or not m.string))
        for message, errors in catalog.check():
            problems.extend(f"{lang}: {message.id!r}: {e}" for e in errors)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("header", "expected"), [
    ("ar-EG,en;q=0.3", "ar"),  # a regional tag outranks a weaker exact match
    ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
    ("zh-Hans-CN,zh;q=0.9", "zh"),
    ("de-DE, ru;q=0.5, en;q=0.4", "ru"),  # the first of the six the browser names
    ("pt-BR, *;q=0.1", "en"),  # none of the six: the default
    ("es;q=0, fr;q=0.1", "fr"),  # q=0 means "not this one"
])
def test_the_browser_language_picks_the_first_of_the_six_it_prefers(
        delivery_project, header: str, expected: str) -> None:
    with running_app(delivery_project.config) as origin:
        page = httpx.get(f"{origin}{PREFIX}/subscribe", headers={"Accept-Language": header})
    assert re.search(r"<html[^>]*>", page.text)[0] == (
        f'<html lang="{expected}" dir="{direction(expected)}">')


def test_a_form_naming_a_language_outside_the_six_is_refused_in_the_page_language(
        delivery_project) -> None:
    with running_app(delivery_project.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/subscribe?lang=ru",
                           data={"email": "new@example.org", "language": "de"})
    assert reply.status_code == 422
    assert gettext_for("ru")("Please choose a language from the list.") in reply.text
    if delivery_project.db.exists():  # a refused form may not even open the database
        with sqlite3.connect(delivery_project.db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "optin_requests" in tables:
                assert conn.execute("SELECT COUNT(*) FROM optin_requests").fetchone() == (0,)


def test_the_text_parts_labels_use_each_languages_own_colon(seen) -> None:
    """A label and its address are one catalog sentence: French puts a no-break space before
    the colon, Chinese writes a full-width colon."""
    text = {lang: seen[lang]["email text"] for lang in ("en", "fr", "zh")}
    assert "View online: http" in text["en"], text["en"][:400]
    assert "Voir en ligne\u00a0: http" in text["fr"], text["fr"][:400]
    assert "在线阅读：http" in text["zh"] and "在线阅读: " not in text["zh"]
    assert re.search(r"^Se désabonner\u00a0: ", text["fr"], re.M)


def test_french_never_glues_de_to_the_newsletters_name() -> None:
    catalog = (LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    assert not re.search(r"\bde \"?\n?\"?%\(newsletter\)s", catalog)
