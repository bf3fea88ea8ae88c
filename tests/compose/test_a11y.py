"""What `check` tells an editor about reading: vague link text, file-name alt text, small text."""

from __future__ import annotations

import pytest
from test_check import GOOD_BODY, check, line_of

from newsletter.compose.a11y import alt_is_file_name, link_text_is_generic, reading_problems


@pytest.mark.parametrize("text", [
    "click here", "Read more →", "here", "Cliquez ici", "lire la suite", "En savoir plus",
    "haga clic aquí", "Leer más", "Подробнее", "нажмите здесь", "点击这里", "阅读更多",
    "اقرأ المزيد", "انقر هنا", "(more)",
])
def test_generic_link_text_is_recognised_in_all_six_languages(text):
    assert link_text_is_generic(text)


@pytest.mark.parametrize("text", [
    "the fee calculator", "Madrid System fees", "Guide des marques",
    "Руководство по товарным знакам", "商标指南", "دليل العلامات التجارية",
    "Here is the 2026 fee table",
])
def test_descriptive_link_text_is_fine(text):
    assert not link_text_is_generic(text)


@pytest.mark.parametrize("alt, src", [
    ("IMG_2034.jpg", "https://e.org/a.jpg"), ("DSC_0012", "https://e.org/x.png"),
    ("chart.png", "https://e.org/chart.png"), ("fees_2026-11", "https://e.org/fees_2026-11.png"),
    ("screenshot 2026-11-02", "https://e.org/s.png"),
])
def test_alt_text_that_is_a_file_name_is_recognised(alt, src):
    assert alt_is_file_name(alt, src)


def test_a_description_is_not_a_file_name():
    assert not alt_is_file_name("Three olive-oil bottles on a table", "https://e.org/IMG_1.jpg")
    assert not alt_is_file_name("Logo", "https://e.org/logo.png")  # a word may be the right alt


def test_small_text_is_reported_but_not_the_hidden_preheader():
    html = ('<div style="font-size:1px; max-height:0">preheader</div>'
            '<td style="font-size:12px"><p>Small print</p></td><p style="font-size:16px">ok</p>')
    found = reading_problems(html)
    assert [m for _, _, m in found] == [
        "text 'Small print' is set at 12 px: body text under 14 px is hard to read on phones "
        "(templates/style.css)"]


def test_check_reports_a_vague_link_at_its_line(project):
    body = GOOD_BODY + "\nFor the fees, [click here](https://ipbusiness.example.org/fees).\n"
    problems = check(project, body)
    line = line_of(project, "[click here]")
    assert problems == [f"DRAFT:{line}: warning: link text 'click here' says nothing out of "
                        "context (screen readers list links alone): name where it goes"]


def test_check_reports_a_file_name_as_alt_text_as_an_error(project):
    body = GOOD_BODY + "\n![IMG_2034.jpg](https://ipbusiness.example.org/IMG_2034.jpg)\n"
    problems = check(project, body)
    line = line_of(project, "![IMG_2034")
    assert problems == [f"DRAFT:{line}: error: image alt text 'IMG_2034.jpg' is a file name: "
                        "describe what the image shows"]


def test_the_sample_templates_have_no_text_under_14_px(project):
    assert not [p for p in check(project) if "px" in p]
