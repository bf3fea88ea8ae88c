"""`build` warns when no installed font covers an edition's script (fontconfig, for real).

An empty fontconfig configuration (FONTCONFIG_FILE) stands for a machine without fonts:
fc-list and Chromium both read it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import front_matter

from newsletter.compose import fonts

needs_fc_list = pytest.mark.skipif(shutil.which("fc-list") is None,
                                   reason="fontconfig's fc-list is not installed")


@pytest.fixture
def no_fonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fontconfig with no font directory at all (and its own cache folder)."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
                    f"<fontconfig><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>\n",
                    encoding="utf-8")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    return conf


@needs_fc_list
def test_the_installed_fonts_cover_the_six_languages() -> None:
    """The machine the screenshots are taken on (.ci/run installs Noto core and CJK)."""
    for language in ("ar", "en", "es", "fr", "ru", "zh"):
        found = fonts.coverage(language)
        assert found.families, f"no font covers {language}"
        assert fonts.font_warning(language) == ""


@needs_fc_list
def test_a_script_without_a_font_gets_a_warning_naming_the_package(no_fonts: Path) -> None:
    assert fonts.coverage("zh").families == ()
    assert fonts.font_warning("zh") == (
        "no installed font covers Chinese (zh): screenshots will show empty boxes; "
        "install fonts-noto-cjk")
    assert fonts.font_warning("zh-tw").startswith("no installed font covers Chinese (zh)")
    assert fonts.font_warning("ar").endswith("install fonts-noto-core")


def test_without_fc_list_it_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no fc-list on the PATH
    monkeypatch.setattr(fonts, "_SAID", set())
    first = fonts.font_warning("zh")
    assert "fc-list (fontconfig) is not installed" in first
    assert fonts.font_warning("ar") == ""  # said once per run, not once per edition
    assert fonts.coverage("zh").families is None


@pytest.mark.browser
@needs_fc_list
def test_build_warns_before_screenshots_of_an_edition_without_a_font(
        project, tmp_path: Path, chromium: Path, no_fonts: Path) -> None:
    project.copy_sample_issue()
    shutil.copy(project.issues / "2026-11.items.yaml", project.issues / "2026-11.zh.items.yaml")
    (project.issues / "2026-11.zh.md").write_text(
        front_matter(subject="出口在即？先保护您的品牌", preheader="海外商标注册。",
                     status="ready", send_at="2026-11-05T09:00") + "您好。\n", encoding="utf-8")
    warning = "warning: no installed font covers Chinese (zh): screenshots will show empty boxes"
    built = project.cli("build", "2026-11.zh", "--out", str(tmp_path / "zh"))
    assert built.code == 0, built.err
    assert warning in built.err
    quiet = project.cli("build", "2026-11.zh", "--no-screenshots", "--out",
                        str(tmp_path / "zh-text"))
    assert quiet.code == 0 and "installed font" not in quiet.err  # no screenshots, no warning


def _platform_fonts(page_file: Path, selectors: tuple[str, ...]) -> dict[str, list[dict]]:
    """The installed fonts Chromium drew each element's text with (DevTools protocol)."""
    from newsletter.compose.browser import open_browser

    with open_browser() as browser:
        page = browser.new_page(java_script_enabled=False)
        page.goto(page_file.resolve().as_uri())
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        used = {}
        for selector in selectors:
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})
            used[selector] = cdp.send("CSS.getPlatformFontsForNode",
                                      {"nodeId": node["nodeId"]})["fonts"]
        page.close()
    return used


@pytest.mark.browser
@needs_fc_list
@pytest.mark.parametrize(("language", "greeting"), [("zh", "您好。"), ("ar", "مرحبًا.")])
def test_chromium_draws_the_edition_with_a_font_that_covers_its_script(
        project, tmp_path: Path, chromium: Path, language: str, greeting: str) -> None:
    """What the screenshots show: no empty boxes, because the text of the masthead, the
    greeting and the footer is drawn with installed fonts fontconfig says cover it."""
    project.copy_sample_issue()
    shutil.copy(project.issues / "2026-11.items.yaml",
                project.issues / f"2026-11.{language}.items.yaml")
    (project.issues / f"2026-11.{language}.md").write_text(
        front_matter(subject=greeting, preheader=greeting, status="ready",
                     send_at="2026-11-05T09:00") + greeting + "\n", encoding="utf-8")
    out = tmp_path / language
    built = project.cli("build", f"2026-11.{language}", "--no-screenshots", "--out", str(out))
    assert built.code == 0, built.err
    covering = set(fonts.coverage(language).families or ())
    used = _platform_fonts(out / "email.html", (".masthead-issue", ".greeting", ".footer p"))
    for selector, drawn in used.items():
        families = {f["familyName"] for f in drawn if f["glyphCount"]}
        assert families & covering, (selector, drawn, sorted(covering))
