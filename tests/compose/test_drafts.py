"""Drafts: YAML front matter validated (every problem, with lines), Markdown body into sections."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.drafts import draft_path, load_draft
from newsletter.errors import DraftError, InputError

ZURICH = ZoneInfo("Europe/Zurich")
REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "2026-11.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path):  # noqa: ANN201 - Draft
    return load_draft(path, timezone=ZURICH)


def problems(path: Path) -> list[str]:
    with pytest.raises(DraftError) as info:
        load(path)
    return info.value.problems


def test_sample_issue_loads_with_its_sections():
    draft = load(SAMPLE_ISSUES / "2026-11.md")
    assert draft.issue == "2026-11"
    assert draft.language == "en"
    assert draft.status == "ready"
    assert draft.subject == "Exporting soon? Protect your brand before you ship"
    assert draft.send_at == datetime(2026, 11, 5, 9, 0, tzinfo=ZURICH)
    assert draft.feeds == ("news", "events")
    assert draft.exclude == ()
    assert [s.title for s in draft.sections] == [
        "", "Trademarks for small exporters", "Case study: one valley, one shared mark",
        "National or international route: what does it cost?", "Free tools"]


def test_markdown_tables_links_images_and_headings_become_sanitised_sections(tmp_path):
    path = write(tmp_path, """---
subject: Hello
---
Intro with [a link](https://example.org/a "Title").

## First *section*

| Item | Cost |
|:-----|-----:|
| Filing | 100 |

![Olive-oil bottles on a table](https://example.org/bottles.jpg)

# Second

Text.
""")
    draft = load(path)
    intro, first, second = draft.sections
    assert intro.title == ""
    assert '<a href="https://example.org/a" title="Title">a link</a>' in intro.html
    assert first.title == "First section"  # headings are plain text
    assert "<h2" not in first.html  # the heading is the section's title, not part of its body
    assert '<th scope="col" style="text-align:left">Item</th>' in first.html
    assert '<td style="text-align:right">100</td>' in first.html
    assert '<img alt="Olive-oil bottles on a table" src="https://example.org/bottles.jpg" ' \
        'width="536" style="width:100%; max-width:536px; height:auto">' in first.html
    assert second.title == "Second"
    assert second.html == "<p>Text.</p>"


def test_heading_inside_a_fenced_code_block_does_not_split_the_draft(tmp_path):
    path = write(tmp_path, """---
subject: Hello
---
Intro.

```
## not a heading
```

## Real heading

Body.
""")
    draft = load(path)
    assert [s.title for s in draft.sections] == ["", "Real heading"]
    assert "<pre><code>## not a heading\n</code></pre>" in draft.sections[0].html
    assert "<h2>" not in draft.sections[0].html


def test_unknown_key_is_named_with_its_file_and_line(tmp_path):
    path = write(tmp_path, "---\nsubject: Hello\ncolour: blue\n---\nBody\n")
    with pytest.raises(DraftError) as info:
        load(path)
    assert str(info.value) == (
        f"{path}: line 3: front matter: 'colour' is not a known key (known: subject, "
        "preheader, status, send_at, feeds, exclude, translated_from, audience, approved_by)")


def test_wrong_types_are_named_with_their_lines(tmp_path):
    path = write(tmp_path, "---\nsubject: 5\nfeeds: news\nexclude: [1, 2]\n---\nBody\n")
    assert problems(path) == [
        "line 2: front matter: 'subject' must be text, not int",
        "line 3: front matter: 'feeds' must be a list, not str",
        "line 4: front matter: 'exclude' must be a list of names or links",
    ]


def test_every_problem_in_the_front_matter_is_reported_at_once(tmp_path):
    path = write(tmp_path, "---\nsubject: 5\nstatus: published\nsend_at: next tuesday\n"
                           "colour: blue\n---\nBody\n")
    with pytest.raises(DraftError) as info:
        load(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"{path}: line ") for line in lines)
    text = "\n".join(lines)
    assert "line 2: front matter: 'subject' must be text, not int" in text
    assert "line 3: front matter: 'status' must be one of draft, ready, not 'published'" in text
    assert ("line 4: front matter: 'send_at' must be an ISO 8601 date or date-time, "
            "not 'next tuesday'") in text
    assert "line 5: front matter: 'colour' is not a known key" in text


def test_missing_subject_is_an_error(tmp_path):
    path = write(tmp_path, "---\nstatus: ready\n---\nBody\n")
    assert problems(path) == ["front matter: 'subject' is missing"]


def test_empty_subject_is_an_error(tmp_path):
    path = write(tmp_path, '---\nsubject: ""\n---\nBody\n')
    assert problems(path) == ["line 2: front matter: 'subject' is empty"]


def test_subject_on_two_lines_is_refused(tmp_path):
    path = write(tmp_path, '---\nsubject: "one\\ntwo"\n---\nBody\n')
    assert problems(path) == ["line 2: front matter: 'subject' must be on one line"]


def test_bad_status_is_an_error(tmp_path):
    path = write(tmp_path, "---\nsubject: Hi\nstatus: sent\n---\nBody\n")
    assert problems(path) == ["line 3: front matter: 'status' must be one of draft, ready, "
                              "not 'sent'"]


def test_status_defaults_to_draft(tmp_path):
    assert load(write(tmp_path, "---\nsubject: Hi\n---\nBody\n")).status == "draft"


def test_bad_send_at_is_an_error(tmp_path):
    path = write(tmp_path, "---\nsubject: Hi\nsend_at: 2026-13-45\n---\nBody\n")
    assert problems(path) == ["line 3: front matter: 'send_at' must be an ISO 8601 date or "
                              "date-time, not '2026-13-45': write it as send_at: "
                              "2027-01-06T09:00 (a time without an offset is in Europe/Zurich; "
                              "add one, as in 2027-01-06T09:00+01:00, for another zone)"]


def test_send_at_without_zone_is_in_the_configured_timezone(tmp_path):
    draft = load(write(tmp_path, "---\nsubject: Hi\nsend_at: 2026-11-05T09:00\n---\nBody\n"))
    assert draft.send_at == datetime(2026, 11, 5, 9, 0, tzinfo=ZURICH)
    assert draft.send_at.utcoffset().total_seconds() == 3600  # CET in November


def test_send_at_as_a_date_means_midnight_in_the_configured_timezone(tmp_path):
    draft = load(write(tmp_path, "---\nsubject: Hi\nsend_at: 2026-07-01\n---\nBody\n"))
    assert draft.send_at == datetime(2026, 7, 1, 0, 0, tzinfo=ZURICH)
    assert draft.send_at.utcoffset().total_seconds() == 7200  # CEST in July


def test_send_at_with_an_offset_keeps_it(tmp_path):
    draft = load(write(tmp_path, "---\nsubject: Hi\nsend_at: 2026-11-05T09:00+00:00\n---\nB\n"))
    assert draft.send_at.utcoffset().total_seconds() == 0


def test_bad_yaml_gives_the_line(tmp_path):
    path = write(tmp_path, '---\nsubject: Hi\npreheader: "unclosed\nstatus: ready\n---\nBody\n')
    with pytest.raises(DraftError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:")
    assert "front matter: not valid YAML" in str(info.value)
    assert info.value.where.rsplit(":", 1)[1].isdigit()


def test_bad_yaml_points_at_the_offending_line(tmp_path):
    path = write(tmp_path, "---\nsubject: Hi\nfeeds: [news\nstatus: ready\n---\nBody\n")
    with pytest.raises(DraftError) as info:
        load(path)
    line = int(info.value.where.rsplit(":", 1)[1])
    assert 3 <= line <= 5  # the unclosed list starts on line 3; YAML notices by line 5


def test_draft_without_front_matter_is_refused(tmp_path):
    with pytest.raises(DraftError) as info:
        load(write(tmp_path, "Just text\n"))
    assert "the draft must start with a '---' line" in str(info.value)


def test_front_matter_without_closing_line_is_refused(tmp_path):
    with pytest.raises(DraftError) as info:
        load(write(tmp_path, "---\nsubject: Hi\nBody\n"))
    assert "no closing '---' line" in str(info.value)


def test_missing_draft_says_how_to_create_one(tmp_path):
    with pytest.raises(DraftError) as info:
        load(tmp_path / "2026-12.md")
    assert "no such draft (create it with `newsletter new`)" in str(info.value)


def test_badly_named_draft_is_refused(tmp_path):
    with pytest.raises(DraftError) as info:
        load(write(tmp_path, "---\nsubject: Hi\n---\n", name="november.md"))
    assert "file name must be YYYY-MM.md or YYYY-MM.LANG.md" in str(info.value)


def test_language_edition_takes_its_language_from_the_file_name(tmp_path):
    draft = load(write(tmp_path, "---\nsubject: Salut\n---\nTexte\n", name="2026-11.fr.md"))
    assert draft.language == "fr"
    assert draft.issue == "2026-11"


def test_draft_path_rejects_a_malformed_issue(tmp_path):
    with pytest.raises(InputError) as info:
        draft_path(tmp_path, "2026-13")
    assert "issue must look like YYYY-MM (e.g. 2026-12), not '2026-13'" in str(info.value)


def test_template_syntax_in_a_draft_is_kept_as_text(tmp_path):
    draft = load(write(tmp_path, "---\nsubject: Hi\n---\nSeven sevens: {{ 7*7 }} {% if x %}\n"))
    assert draft.sections[0].html == "<p>Seven sevens: {{ 7*7 }} {% if x %}</p>"


def test_raw_html_in_a_draft_goes_through_the_sanitiser(tmp_path):
    draft = load(write(tmp_path, """---
subject: Hi
---
<script>alert(1)</script>
<p onclick="steal()">Click <a href="javascript:alert(1)">here</a></p>
<iframe src="https://evil.example/"></iframe>
<form action="https://evil.example/"><input name="pw"></form>
"""))
    html = draft.sections[0].html
    for banned in ("<script", "alert(1)", "onclick", "javascript:", "<iframe", "<form",
                   "<input"):
        assert banned not in html
    assert "Click <a>here</a>" in html
