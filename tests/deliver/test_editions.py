"""Language editions: each subscriber gets exactly one edition, theirs or the default."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project
from smtp_server import Script, ScriptedServer

from newsletter.i18n import gettext_for

NOW = "2026-11-22T10:00"
LANGUAGES = ["en", "fr", "ar", "es", "zh"]


def translate(project: DeliveryProject, language: str, subject: str) -> Path:
    """A small translated edition beside the sample issue, marked as up to date."""
    from newsletter.compose.drafts import content_hash

    source = project.root / "issues" / "2026-11.md"
    text = source.read_text(encoding="utf-8")
    front, body = text.split("\n---\n", 1)
    front = re.sub(r'^subject: .*$', f'subject: "{subject}"', front, flags=re.MULTILINE)
    front += f'\ntranslated_from: "{content_hash(source)}"'
    path = project.root / "issues" / f"2026-11.{language}.md"
    path.write_text(f"{front}\n---\n## {subject}\n\n{body.split(chr(10), 1)[1]}",
                    encoding="utf-8")
    (project.root / "issues" / f"2026-11.{language}.items.yaml").write_text(
        (project.root / "issues" / "2026-11.items.yaml").read_text(encoding="utf-8"),
        encoding="utf-8")
    return path


@pytest.fixture
def multilingual(tmp_path: Path, monkeypatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    project = make_delivery_project(tmp_path / "nl", 0)
    rows = ["email,name,language,tags"]
    for n, language in enumerate(LANGUAGES * 2):
        rows.append(f"reader{n:02d}.{language}@example.com,Reader {n},{language},")
    project.addresses = [r.split(",")[0] for r in rows[1:]]
    (project.root / "subscribers" / "sample.csv").write_text("\n".join(rows) + "\n",
                                                             encoding="utf-8")
    translate(project, "fr", "Exporter ? Protégez votre marque")
    translate(project, "ar", "هل تستعد للتصدير؟ احمِ علامتك التجارية")
    return project


def send_all(project: DeliveryProject, monkeypatch) -> Script:
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert project.cli("send", "--now", NOW) == 0
    return script


def test_each_subscriber_gets_exactly_one_edition_in_their_language_or_the_default(
        multilingual: DeliveryProject, monkeypatch) -> None:
    script = send_all(multilingual, monkeypatch)
    assert script.copies() == {a: 1 for a in multilingual.addresses}
    expected = {"en": "en", "fr": "fr", "ar": "ar", "es": "en", "zh": "en"}
    for address in multilingual.addresses:
        language = address.split("@")[0].split(".")[1]
        [message] = script.parsed(address)
        assert message["Content-Language"] == expected[language], address
    [arabic] = script.parsed("reader02.ar@example.com")
    html = arabic.get_body(("html",)).get_content()
    assert 'dir="rtl"' in html and arabic["Subject"].startswith("هل تستعد")
    [french] = script.parsed("reader01.fr@example.com")
    assert gettext_for("fr")("Unsubscribe") != "Unsubscribe"  # the catalog is translated
    assert gettext_for("fr")("Unsubscribe") in french.get_body(("html",)).get_content()


def test_status_reports_who_got_the_default_edition(
        multilingual: DeliveryProject, monkeypatch, capsys) -> None:
    send_all(multilingual, monkeypatch)
    capsys.readouterr()
    assert multilingual.cli("status", "2026-11") == 0
    out = capsys.readouterr().out
    assert "editions: ar 2, en 6, fr 2" in out
    assert "2 subscriber(s) in 'es' got the 'en' edition" in out
    assert "2 subscriber(s) in 'zh' got the 'en' edition" in out


def test_ledger_key_is_one_row_per_subscriber_whatever_the_editions(
        multilingual: DeliveryProject, monkeypatch) -> None:
    send_all(multilingual, monkeypatch)
    with sqlite3.connect(multilingual.db) as conn:
        rows = conn.execute("SELECT count(*), count(DISTINCT subscriber_id) FROM deliveries "
                            "WHERE issue = '2026-11'").fetchone()
        editions = conn.execute("SELECT language FROM editions WHERE issue = '2026-11' "
                                "ORDER BY language").fetchall()
    assert rows == (10, 10)
    assert [e[0] for e in editions] == ["ar", "en", "fr"]


def test_check_warns_about_missing_and_outdated_editions(
        multilingual: DeliveryProject, capsys) -> None:
    multilingual.cli("subscribers", "import", str(multilingual.root / "subscribers" /
                                                  "sample.csv"))
    capsys.readouterr()
    assert multilingual.cli("check", "2026-11") == 0
    out = capsys.readouterr().out
    assert "no 'es' edition (2026-11.es.md): 2 active subscriber(s)" in out
    assert "no 'zh' edition" in out and "no 'fr' edition" not in out
    default = multilingual.root / "issues" / "2026-11.md"
    default.write_text(default.read_text(encoding="utf-8") + "\nA late addition.\n",
                       encoding="utf-8")
    assert multilingual.cli("check", "2026-11.fr") == 0
    assert "older than 2026-11.md" in capsys.readouterr().out


def test_an_error_in_one_edition_holds_the_whole_issue(
        multilingual: DeliveryProject, monkeypatch, capsys) -> None:
    french = multilingual.root / "issues" / "2026-11.fr.md"
    french.write_text(french.read_text(encoding="utf-8") + "\n![](relative.png)\n",
                      encoding="utf-8")
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert multilingual.cli("send", "--now", NOW) == 1
    assert script.messages == [] and multilingual.states() == {}
    assert "2026-11: not sent" in capsys.readouterr().err


def test_the_web_pages_follow_the_reader_language(multilingual: DeliveryProject) -> None:
    import httpx
    from web_server import running_app

    with running_app(multilingual.config) as origin:
        french = httpx.get(f"{origin}/newsletter/subscribe?lang=fr")
        arabic = httpx.get(f"{origin}/newsletter/subscribe",
                           headers={"Accept-Language": "ar,en;q=0.5"})
    assert 'lang="fr"' in french.text and gettext_for("fr")("Subscribe") in french.text
    assert 'dir="rtl"' in arabic.text and 'lang="ar"' in arabic.text


@pytest.mark.browser
def test_arabic_edition_is_right_to_left_and_mirrored_in_chromium(
        chromium: Path, multilingual: DeliveryProject, tmp_path: Path) -> None:
    from newsletter.compose.browser import horizontal_overflow, open_browser

    out = tmp_path / "ar"
    assert multilingual.cli("build", "2026-11.ar", "--out", str(out)) == 0
    page_file = out / "email.html"
    with open_browser() as browser:
        page = browser.new_page(viewport={"width": 600, "height": 900})
        page.goto(page_file.resolve().as_uri())
        style = page.evaluate("""() => {
            const s = (el) => getComputedStyle(el);
            const greeting = document.querySelector('.greeting');
            const list = document.querySelector('.prose ul');
            const event = document.querySelector('.event-date');
            const container = document.querySelector('.container').getBoundingClientRect();
            const range = document.createRange();
            range.selectNodeContents(greeting);  // the text itself, not the full-width block
            const g = range.getBoundingClientRect();
            return {dir: s(greeting).direction, align: s(greeting).textAlign,
                    listPadding: s(list).paddingRight, eventBorder: s(event).borderRightWidth,
                    gapRight: container.right - g.right, gapLeft: g.left - container.left,
                    html: document.documentElement.getAttribute('dir')};
        }""")
        page.close()
        overflow = horizontal_overflow(browser, page_file, 375)
    assert style["html"] == "rtl" and style["dir"] == "rtl" and style["align"] == "right"
    assert style["listPadding"] == "22px" and style["eventBorder"] == "4px"
    assert style["gapRight"] < style["gapLeft"]  # the greeting hugs the right edge
    assert overflow == 0
    assert (out / "phone.png").exists() and (out / "desktop.png").exists()
