"""Rendering an edition: golden files for the sample issue, autoescaping, strict templates, text."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.drafts import load_draft
from newsletter.compose.feeds import FeedItem
from newsletter.compose.personalise import NAME, UNSUBSCRIBE_URL
from newsletter.compose.render import render_edition
from newsletter.compose.snapshot import read_snapshot
from newsletter.config import load_config
from newsletter.errors import InputError

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def sample_edition():  # noqa: ANN201 - Edition
    config = load_config(REPO / "newsletter.toml")
    draft = load_draft(SAMPLE_ISSUES / "2026-11.md", timezone=config.timezone,
                       default_language=config.default_language)
    snapshot = read_snapshot(SAMPLE_ISSUES / "2026-11.items.yaml")
    return render_edition(config, draft, snapshot.items)


@pytest.mark.parametrize("suffix", ["html", "txt"])
def test_sample_issue_matches_golden(suffix):
    """After a deliberate change to templates or rendering: `make golden`, then review the diff."""
    edition = sample_edition()
    rendered = edition.html if suffix == "html" else edition.text
    golden = GOLDEN / f"2026-11.{suffix}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(rendered.encode("utf-8"))
        return
    assert golden.exists(), f"{golden} is missing: run `make golden`"
    expected = golden.read_bytes().decode("utf-8")
    assert rendered == expected, f"{golden} differs: run `make golden` if the change is wanted"


def test_sample_edition_carries_subject_preheader_and_placeholders():
    edition = sample_edition()
    assert (edition.issue, edition.language) == ("2026-11", "en")
    assert edition.subject == "Exporting soon? Protect your brand before you ship"
    assert edition.preheader.startswith("Why to register your trademark abroad first")
    assert edition.fallback_name == "reader"
    for part in (edition.html, edition.text):
        assert f"Dear {NAME}," in part
        assert UNSUBSCRIBE_URL in part
    assert f'href="{UNSUBSCRIBE_URL}"' in edition.html
    assert len(edition.html.encode()) < 100 * 1024  # under Gmail's clip, with room to spare


def test_html_is_inlined_once_with_the_phone_rules_kept():
    html = sample_edition().html
    assert re.search(r"<td class=\"masthead\" style='background-color:#0b3d6b; [^']*'", html)
    assert html.count("<style>") == 1
    assert "@media only screen and (max-width: 620px)" in html
    assert "!important" in html


def render(project, body: str = "Hello.", items: tuple[FeedItem, ...] = (), **fields):  # noqa: ANN201
    project.draft(body=body, **fields)
    return render_edition(project.config(), project.load_draft(), items)


def news_item(**fields: object) -> FeedItem:
    data: dict = {"id": "n-1", "title": "A title", "link": "https://news.example.org/1",
                  "summary": "<p>Summary.</p>",
                  "published": datetime(2026, 10, 13, 8, 15, tzinfo=UTC), "feed": "news",
                  "section": "News in brief", "kind": "news"}
    data.update(fields)
    return FeedItem(**data)


def test_feed_title_with_script_is_escaped(project):
    edition = render(project, items=(news_item(title='<script>alert("x")</script> & more'),))
    assert "<script>" not in edition.html
    assert "&lt;script&gt;alert(" in edition.html
    assert "&amp; more" in edition.html
    assert '<script>alert("x")</script> & more' in edition.text  # plain text needs no escaping


def test_subject_and_preheader_are_escaped_in_html(project):
    edition = render(project, subject="Tips <b>bold</b> & co", preheader="<i>pre</i>")
    assert "<title>Tips &lt;b&gt;bold&lt;/b&gt; &amp; co</title>" in edition.html
    assert "&lt;i&gt;pre&lt;/i&gt;" in edition.html
    assert "<i>pre</i>" not in edition.html


def test_template_syntax_in_a_draft_stays_literal_text(project):
    edition = render(project, body="Seven sevens: {{ 7*7 }}.\n\n## Section\n\n{% if true %}x")
    assert "Seven sevens: {{ 7*7 }}." in edition.html
    assert "{% if true %}x" in edition.html
    assert "49" not in edition.html
    assert "Seven sevens: {{ 7*7 }}." in edition.text


def test_undefined_variable_in_a_template_names_the_template_file_and_line(project):
    template = project.root / "templates" / "email.html.j2"
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("{{ reason }}", "{{ newsletter_reason }}"),
                        encoding="utf-8")
    line = 1 + text[:text.index("{{ reason }}")].count("\n")
    with pytest.raises(InputError) as info:
        render(project)
    assert str(info.value) == (f"{template}:{line}: template error: "
                               "'newsletter_reason' is undefined")
    assert info.value.exit_code == 2


def test_undefined_attribute_in_a_partial_names_the_partial(project):
    partial = project.root / "templates" / "partials" / "_item.html.j2"
    text = partial.read_text(encoding="utf-8")
    assert text.splitlines()[1].count("item.title") == 1
    partial.write_text(text.replace("item.title", "item.headline"), encoding="utf-8")
    with pytest.raises(InputError) as info:
        render(project, items=(news_item(),))
    assert str(info.value).startswith(f"{partial}:2: template error: ")
    assert "has no attribute 'headline'" in str(info.value)


def test_template_syntax_error_names_the_file_and_line(project):
    template = project.root / "templates" / "email.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "{% if %}\n", encoding="utf-8")
    lines = template.read_text(encoding="utf-8").count("\n")
    with pytest.raises(InputError) as info:
        render(project)
    assert str(info.value).startswith(f"{template}:{lines}: template error: ")


def test_plain_text_part_underlines_headings_inlines_links_and_lists_feed_items(project):
    body = ("Intro with [our guide](https://ipbusiness.example.org/guide).\n\n"
            "## Trademarks abroad\n\nRegister **first**.\n\n- one\n- two\n")
    items = (news_item(), news_item(id="n-2", title="Second", link="https://news.example.org/2"))
    text = render(project, body=body, items=items).text
    assert "Intro with our guide <https://ipbusiness.example.org/guide>." in text
    assert "Trademarks abroad\n=================\n\nRegister first.\n\n- one\n- two\n" in text
    assert "News in brief\n=============\n\n* A title (13 Oct 2026)\n" \
           "  https://news.example.org/1\n  Summary.\n\n* Second (13 Oct 2026)\n" \
           "  https://news.example.org/2\n" in text
    assert not re.search(r"<[a-zA-Z/][^>]*>", text.replace(
        "<https://ipbusiness.example.org/guide>", ""))
    assert "  \n" not in text and "\n\n\n" not in text  # tidy: no trailing spaces, no big gaps


def test_events_are_rendered_as_date_and_title_rows(project):
    event = news_item(title="12 November 2026 — Webinar: Trademarks", kind="events",
                      section="Upcoming events")
    edition = render(project, items=(event,))
    assert re.search(r'<td class="event-date"[^>]*>12 November 2026</td>', edition.html)
    assert re.search(r'<a href="https://news.example.org/1"[^>]*>Webinar: Trademarks</a>',
                     edition.html)
    assert "* 12 November 2026 — Webinar: Trademarks\n" in edition.text  # no published date


def test_language_edition_gets_its_direction_and_web_view_address(project):
    path = project.issues / "2026-11.ar.md"
    path.write_text('---\nsubject: "نشرة"\n---\nمرحبا\n', encoding="utf-8")
    config = project.config()
    draft = load_draft(path, timezone=config.timezone, default_language="en")
    edition = render_edition(config, draft, ())
    assert '<html lang="ar" dir="rtl"' in edition.html
    assert "https://ipbusiness.example.org/newsletter/issues/2026-11/ar" in edition.html
