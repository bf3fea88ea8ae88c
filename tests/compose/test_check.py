"""`newsletter check`: every problem at once, each an error or warning with its file:line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.check import check_issue
from newsletter.compose.render import render_edition
from newsletter.compose.snapshot import read_snapshot

REPO = Path(__file__).resolve().parents[2]

GOOD_BODY = """\
Welcome to the test issue.

## Trademarks abroad

Read [the guide](https://ipbusiness.example.org/guide).

![A chart of fees](https://ipbusiness.example.org/chart.png)
"""


def check(project, body: str = GOOD_BODY, **fields: object) -> list[str]:
    """Problems for a 2026-11 draft with BODY, rendered with the sample snapshot's items."""
    project.copy_sample_issue()
    path = project.draft(body=body, **fields)
    config = project.config()
    draft = project.load_draft()
    items = read_snapshot(project.issues / "2026-11.items.yaml").items
    edition = render_edition(config, draft, items)
    problems = check_issue(draft, edition, item_count=len(items))
    return [str(p).replace(str(path), "DRAFT") for p in problems]


def line_of(project, needle: str) -> int:
    text = (project.issues / "2026-11.md").read_text(encoding="utf-8")
    return text[:text.index(needle)].count("\n") + 1


def test_a_clean_draft_has_no_problems(project):
    assert check(project) == []


def test_image_without_alt_text_is_an_error_on_its_line(project):
    problems = check(project, GOOD_BODY + "\n![](https://ipbusiness.example.org/logo.png)\n")
    line = line_of(project, "![](https")
    assert problems == [f"DRAFT:{line}: error: image 'https://ipbusiness.example.org/logo.png' "
                        "has no alt text"]


def test_relative_link_is_an_error_on_its_line(project):
    problems = check(project, GOOD_BODY + "\nSee [our team](/about/team).\n")
    line = line_of(project, "/about/team")
    assert problems == [f"DRAFT:{line}: error: link '/about/team' is not an absolute http(s) URL"]


def test_relative_image_is_an_error_on_its_line(project):
    problems = check(project, GOOD_BODY + "\n![Logo](img/logo.png)\n")
    line = line_of(project, "img/logo.png")
    assert problems == [f"DRAFT:{line}: error: image 'img/logo.png' is not an absolute http(s) URL"]


def test_placeholder_like_text_is_an_error_on_its_line(project):
    problems = check(project, GOOD_BODY + "\nHello __NL_FIRSTNAME__!\n")
    line = line_of(project, "__NL_FIRSTNAME__")
    assert problems == [f"DRAFT:{line}: error: __NL_FIRSTNAME__ is never filled in: a draft "
                        "cannot place a reader's name or link (the template does); it is "
                        "sent as text"]


@pytest.mark.parametrize("text", ["__NL_NAME__", "__NL_UNSUBSCRIBE_URL__", "__nl_name__"])
def test_a_real_slot_name_in_a_draft_is_an_error_too(project, text):
    """Only the template fills slots: a draft that tries is told so, at its line."""
    problems = check(project, GOOD_BODY + f"\nHello {text}!\n")
    assert problems == [f"DRAFT:{line_of(project, text)}: error: {text} is never filled in: "
                        "a draft cannot place a reader's name or link (the template does); "
                        "it is sent as text"]


def test_a_placeholder_in_the_subject_is_reported_at_its_front_matter_line(project):
    problems = check(project, GOOD_BODY, subject="Hi __NL_NAME__")
    assert problems == [f"DRAFT:{line_of(project, 'subject:')}: error: __NL_NAME__ is never "
                        "filled in: a draft cannot place a reader's name or link (the template "
                        "does); it is sent as text"]


def test_template_syntax_in_a_draft_is_an_error_on_its_line(project):
    problems = check(project, GOOD_BODY + "\nYou have {{ 7*7 }} days left.\n")
    line = line_of(project, "{{ 7*7 }}")
    assert problems == [f"DRAFT:{line}: error: template syntax '{{{{' is sent literally: "
                        "drafts are never templates"]


def test_html_over_100_kb_after_inlining_is_an_error(project):
    paragraph = "Intellectual property for small firms, explained in plain words. " * 20
    body = GOOD_BODY + "\n" + "\n\n".join([paragraph] * 90)
    problems = check(project, body)
    assert len(problems) == 1
    assert problems[0].startswith("DRAFT: error: HTML is ")
    assert " KB after inlining, " in problems[0]
    assert problems[0].endswith(" KB on the wire; Gmail clips messages over 102 KB "
                                "(keep it under 100 KB)")


def test_html_under_100_kb_that_is_over_it_on_the_wire_is_an_error(project):
    paragraph = "الملكية الفكرية للشركات الصغيرة، بكلمات بسيطة وواضحة. " * 20
    body = GOOD_BODY + "\n" + "\n\n".join([paragraph] * 38)
    problems = check(project, body)
    assert len(problems) == 1, problems
    html_kb, wire_kb = map(int, re.findall(r"(\d+) KB", problems[0])[:2])
    assert html_kb < 100 < wire_kb  # base64 of Arabic text is a third larger than its UTF-8


def test_every_problem_is_reported_at_once_with_warnings(project):
    body = ("Hi {{ name }}.\n\n![](https://ipbusiness.example.org/x.png)\n\n"
            "[Home](index.html) and __NL_FOO__.\n")
    problems = check(project, body, preheader="", status="draft", subject="S" * 90)
    assert [p.split(": ", 2)[1] for p in problems] == [
        "warning", "warning", "warning", "error", "error", "error", "error"]
    text = "\n".join(problems)
    assert "'preheader' is empty" in text
    assert "subject is 90 characters" in text
    assert "status is 'draft': `send` skips it until it is 'ready'" in text
    assert "template syntax" in text and "__NL_FOO__" in text
    assert "has no alt text" in text and "'index.html'" in text


def test_no_feed_items_is_a_warning(project):
    project.copy_sample_issue()
    (project.issues / "2026-11.items.yaml").write_text(
        "issue: 2026-11\npulled_at: '2026-11-22T11:00:00Z'\n"
        "window: {start: '2026-10-01T00:00:00Z', end: '2026-11-05T08:00:00Z'}\nitems: []\n",
        encoding="utf-8")
    result = project.cli("check", "2026-11")
    assert result.code == 0
    assert "warning: no feed items: run `newsletter pull` or check the feeds" in result.out


def test_cli_check_exits_0_on_the_sample_issue(project):
    project.copy_sample_issue()
    # in its month: on the real clock the sample (send_at 5 Nov 2026) is off schedule one day
    result = project.cli("check", "2026-11", "--now", "2026-11-22T10:00")
    assert result.code == 0, result.out + result.err
    assert result.out == "check 2026-11.md: 0 error(s), 0 warning(s)\n"
    assert project.server.requests == []  # the snapshot is used; nothing is fetched


def test_cli_check_exits_1_listing_each_error_with_file_and_line(project):
    project.copy_sample_issue()
    shutil.copy(SAMPLE_ISSUES / "2026-11.md", project.issues / "2026-11.md")
    path = project.issues / "2026-11.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nBye {{ name }}, see [x](/x).\n",
                    encoding="utf-8")
    result = project.cli("check", "2026-11", "--now", "2026-11-22T10:00")  # in its month
    assert result.code == 1
    lines = result.out.splitlines()
    line = line_of(project, "{{ name }}")
    assert lines == [
        f"{path}:{line}: error: template syntax '{{{{' is sent literally: drafts are never "
        "templates",
        f"{path}:{line}: error: link '/x' is not an absolute http(s) URL",
        "check 2026-11.md: 2 error(s), 0 warning(s)",
    ]


def test_cli_check_lists_every_front_matter_problem_and_exits_1(project):
    project.copy_sample_issue()
    path = project.issues / "2026-11.md"
    path.write_text("---\nsubject: 5\nstatus: sent\n---\nBody\n", encoding="utf-8")
    result = project.cli("check", "2026-11")
    assert result.code == 1
    assert result.out.splitlines() == [
        f"{path}:2: error: front matter: 'subject' must be text, not int",
        f"{path}:3: error: front matter: 'status' must be one of draft, ready, not 'sent'",
        "check 2026-11.md: 2 error(s), 0 warning(s)",
    ]


def test_problem_in_a_feed_item_points_at_the_snapshot_line(project):
    project.copy_sample_issue()
    snapshot = project.issues / "2026-11.items.yaml"
    text = snapshot.read_text(encoding="utf-8")
    text = text.replace("Sessions run every second Thursday;",
                        '<img src="https://img.example.org/clinic.png"> Sessions run every '
                        "second Thursday;")
    snapshot.write_text(text, encoding="utf-8")
    result = project.cli("check", "2026-11")
    assert result.code == 1
    line = text[:text.index("https://img.example.org/clinic.png")].count("\n") + 1
    assert result.out.splitlines()[0] == (
        f"{snapshot}:{line}: error: image 'https://img.example.org/clinic.png' has no alt text")


def test_check_without_a_snapshot_says_run_pull_and_writes_nothing(project):
    project.copy_sample_issue()
    project.draft(body=GOOD_BODY)
    (project.issues / "2026-11.items.yaml").unlink()
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    result = project.cli("check", "2026-11")
    assert result.code == 1
    snapshot = project.issues / "2026-11.items.yaml"
    assert result.out.splitlines()[0] == (
        f"{snapshot}: error: no snapshot: run `newsletter pull 2026-11` first (check fetches "
        "and writes nothing)")
    assert sorted(p.relative_to(project.root) for p in project.root.rglob("*")) == before
