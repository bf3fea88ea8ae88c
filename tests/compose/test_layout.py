"""The email in real clients' terms: fluid without <style>, caniemail-clean, accessible, dark."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.drafts import load_draft
from newsletter.compose.render import render_edition
from newsletter.compose.snapshot import read_snapshot
from newsletter.config import load_config

REPO = Path(__file__).resolve().parents[2]
FEATURES = REPO / "templates" / "email-features.json"
LINT = REPO / "tools" / "lint-email.mjs"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
LANGUAGES = ["en", "fr", "ar", "es", "ru", "zh"]  # the sample editions; ar is right to left
# Landmark rules are about web pages with navigation; an email has none to offer.
AXE_NOT_FOR_EMAIL = {"region", "landmark-one-main", "landmark-complementary-is-top-level",
                     "landmark-no-duplicate-banner", "landmark-no-duplicate-contentinfo",
                     "landmark-unique"}


def sample_edition(language: str):  # noqa: ANN201 - Edition
    config = load_config(REPO / "newsletter.toml")
    suffix = "" if language == config.default_language else f".{language}"
    draft = load_draft(SAMPLE_ISSUES / f"2026-11{suffix}.md", timezone=config.timezone,
                       default_language=config.default_language)
    snapshot = read_snapshot(SAMPLE_ISSUES / f"2026-11{suffix}.items.yaml")
    return render_edition(config, draft, snapshot.items)


def sample_html(language: str) -> str:
    return sample_edition(language).html


def sample_text(language: str) -> str:
    return sample_edition(language).text


def without_style(html: str) -> str:
    """What Gmail's mobile webmail (non-Gmail accounts) and some Outlooks render."""
    stripped = re.sub(r"<style\b.*?</style>", "", html, flags=re.DOTALL)
    assert "<style" not in stripped
    return stripped


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("editions")
    files = {}
    for language in LANGUAGES:
        html = sample_html(language)
        for variant, text in (("full", html), ("nostyle", without_style(html))):
            files[f"{language}-{variant}"] = out / f"{language}-{variant}.html"
            files[f"{language}-{variant}"].write_text(text, encoding="utf-8")
    return files


def node_tools() -> None:
    if shutil.which("node") is None or not (REPO / "node_modules" / "doiuse-email").exists():
        if os.environ.get("CI"):
            pytest.fail("node_modules missing: .ci/run installs them with npm")
        pytest.skip("node tools missing: run `npm install` (make test does)")


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(LINT), str(FEATURES), *map(str, files)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_every_sample_edition_uses_only_supported_or_listed_progressive_features(editions):
    node_tools()
    result = lint(*(editions[f"{lang}-full"] for lang in LANGUAGES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(LANGUAGES)} file(s), 0 unsupported" in result.stdout


def test_the_lint_fails_on_an_unsupported_feature_that_is_not_listed(tmp_path):
    node_tools()
    page = tmp_path / "bad.html"
    page.write_text('<html><body><div style="position:absolute; background-image:'
                    'linear-gradient(red, blue)">x</div></body></html>', encoding="utf-8")
    result = lint(page)
    assert result.returncode == 1
    assert f"{page}: position" in result.stdout


def test_every_progressive_enhancement_names_its_fallback():
    listed = json.loads(FEATURES.read_text(encoding="utf-8"))["progressive"]
    assert listed and all(len(why.split()) >= 8 for why in listed.values())


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201 - one Chromium for the module's layout checks
    from newsletter.compose.browser import BrowserUnavailable, open_browser

    try:
        opened_browser = open_browser()
        opened = opened_browser.__enter__()
    except BrowserUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; browser tests must run in CI")
        pytest.skip(str(exc))
    try:
        yield opened
    finally:
        opened_browser.__exit__(None, None, None)


@pytest.mark.browser
def test_the_email_fits_the_screen_with_and_without_its_style_block(browser, editions):
    from newsletter.compose.browser import horizontal_overflow

    overflow = {(name, width): horizontal_overflow(browser, path, width)
                for width in (320, 375, 600) for name, path in editions.items()}
    assert overflow == {key: 0 for key in overflow}


@pytest.mark.browser
def test_the_container_is_at_most_600_px_and_fills_a_phone_without_style(browser, editions):
    widths = {}
    for width in (375, 900):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(editions["en-nostyle"].resolve().as_uri())
        widths[width] = page.evaluate(
            "document.querySelector('.container').getBoundingClientRect().width")
        page.close()
    assert widths[375] == 375 and widths[900] == 600


def run_axe(browser, path: Path) -> list[dict]:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 600, "height": 900})
    page.goto(path.resolve().as_uri())
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, help: v.help,
            nodes: v.nodes.map(n => n.html.slice(0, 120))}));
    }""")
    page.close()
    return [v for v in found if v["id"] not in AXE_NOT_FOR_EMAIL]


@pytest.mark.browser
def test_axe_core_finds_no_violations_in_any_edition(browser, editions):
    node_tools()
    violations = {name: run_axe(browser, path) for name, path in editions.items()
                  if name.endswith("-full")}
    assert violations == {name: [] for name in violations}


@pytest.mark.browser
def test_axe_core_is_not_blind_a_page_with_known_violations_fails(browser, tmp_path):
    node_tools()
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="data:,"><table><tr><th></th></tr></table>'
                    '<a href="https://e.org"></a></body></html>', encoding="utf-8")
    ids = {v["id"] for v in run_axe(browser, page)}
    assert {"image-alt", "link-name", "html-has-lang"} <= ids


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "ar"])
def test_dark_mode_gives_light_text_on_dark_panels(browser, editions, tmp_path, language):
    page = browser.new_page(viewport={"width": 375, "height": 900}, color_scheme="dark")
    page.goto(editions[f"{language}-full"].resolve().as_uri())
    colours = page.evaluate("""() => {
        const c = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
        return {panel: c('.container', 'backgroundColor'), text: c('.block', 'color'),
                title: c('.section-title', 'color'), footer: c('.footer', 'backgroundColor'),
                scheme: document.querySelector('meta[name=color-scheme]').content};
    }""")
    page.screenshot(path=str(tmp_path / f"dark-{language}.png"), full_page=True)
    page.close()
    assert colours["scheme"] == "light dark"
    assert luminance(colours["panel"]) < 0.05 and luminance(colours["footer"]) < 0.05
    assert contrast(colours["text"], colours["panel"]) >= 7
    assert contrast(colours["title"], colours["panel"]) >= 4.5


def luminance(css: str) -> float:
    """WCAG 2.x relative luminance of an rgb() colour."""
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("language", LANGUAGES)
def test_plain_text_lines_fit_78_columns_except_long_urls(language):
    from newsletter.compose.textwidth import display_width

    long_lines = [line for line in sample_text(language).splitlines()
                  if display_width(line) > 78 and "://" not in line]
    assert long_lines == []


def test_each_edition_links_the_other_ready_editions_by_their_own_names():
    html = sample_html("fr")
    also = re.search(r'<td class="also-in".*?</td>', html, re.DOTALL).group()
    assert re.findall(r'lang="(\w+)"[^>]*>([^<]+)</a>', also) == [
        ("ar", "العربية"), ("zh", "中文"), ("en", "English"), ("ru", "Русский"),
        ("es", "Español")]  # the publisher's order; not the edition's own (fr)
    assert "Aussi en :" in also
    assert "https://ipbusiness.example.org/newsletter/issues/2026-11/ar" in also
    assert "Aussi en :\n  العربية: https://ipbusiness.example.org/newsletter/issues/2026-11/ar" \
        in sample_text("fr")


def test_a_draft_edition_is_not_listed(tmp_path, monkeypatch):
    import shutil as sh

    from newsletter.config import load_config as load

    for name in ("newsletter.toml",):
        sh.copy(REPO / name, tmp_path / name)
    sh.copytree(REPO / "templates", tmp_path / "templates")
    sh.copytree(SAMPLE_ISSUES, tmp_path / "issues")
    fr = tmp_path / "issues" / "2026-11.fr.md"
    fr.write_text(fr.read_text(encoding="utf-8").replace("status: ready", "status: draft", 1),
                  encoding="utf-8")
    config = load(tmp_path / "newsletter.toml")
    draft = load_draft(tmp_path / "issues" / "2026-11.md", timezone=config.timezone,
                       default_language=config.default_language)
    items = read_snapshot(tmp_path / "issues" / "2026-11.items.yaml").items
    html = render_edition(config, draft, items).html
    also = re.search(r'<td class="also-in".*?</td>', html, re.DOTALL).group()
    assert 'lang="ar"' in also and 'lang="fr"' not in also


@pytest.mark.browser
def test_english_feed_text_in_the_arabic_edition_starts_at_the_left(browser, editions):
    """An item in another script keeps its own direction (dir="auto") and its own start edge:
    an English summary in the right-to-left edition is aligned left, with or without the
    <style> block (the rule is inlined)."""
    for variant in ("ar-full", "ar-nostyle"):
        page = browser.new_page(viewport={"width": 600, "height": 900})
        page.goto(editions[variant].as_uri())
        sides = page.evaluate("""() => [...document.querySelectorAll('.card-summary')].map(
            e => [getComputedStyle(e).direction, getComputedStyle(e).textAlign])""")
        page.close()
        english = [align for direction, align in sides if direction == "ltr"]
        assert english and all(a in ("start", "left") for a in english), (variant, sides)
        html = editions[variant].read_text(encoding="utf-8")
        assert re.search(r'<html[^>]*\bdir="rtl"', html) and 'align="start"' not in html
