"""The compose commands end to end: `newsletter new`, `build` and their exit codes."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from newsletter.compose.personalise import PLACEHOLDER_RE


def test_new_creates_next_months_draft_from_the_template_with_send_at_filled(project):
    result = project.cli("new", "--now", "2026-11-22T10:00")
    path = project.issues / "2026-12.md"
    assert result.code == 0, result.err
    assert result.out == (f"created {path} from _template.md: write it, then "
                          "`newsletter pull 2026-12`\n")
    template = (project.issues / "_template.md").read_text(encoding="utf-8")
    assert path.read_text(encoding="utf-8") == template.replace("SEND_AT", "2026-12-01T09:00")
    assert "send_at: 2026-12-01T09:00\n" in path.read_text(encoding="utf-8")


def test_new_in_december_starts_januarys_issue(project):
    assert project.cli("new", "--now", "2026-12-15T10:00").code == 0
    assert (project.issues / "2027-01.md").exists()


def test_new_with_an_explicit_issue(project):
    assert project.cli("new", "2027-03").code == 0
    assert "send_at: 2027-03-01T09:00" in (project.issues / "2027-03.md").read_text("utf-8")


def test_new_draft_from_the_template_asks_for_a_subject_before_it_can_be_built(project):
    project.cli("new", "--now", "2026-11-22T10:00")
    result = project.cli("build", "2026-12", "--no-screenshots")
    assert result.code == 2
    assert result.err == (f"newsletter: {project.issues / '2026-12.md'}: line 2: front matter: "
                          "'subject' is empty\n")


def test_new_refuses_to_overwrite_an_existing_draft(project):
    path = project.draft("2026-12", body="My words.\n")
    before = path.read_text(encoding="utf-8")
    result = project.cli("new", "--now", "2026-11-22T10:00")
    assert result.code == 2
    assert result.err == (f"newsletter: {path}: already exists; edit it, or delete it to start "
                          "again\n")
    assert path.read_text(encoding="utf-8") == before


def test_new_with_a_malformed_issue_exits_2(project):
    result = project.cli("new", "2026-13")
    assert result.code == 2
    assert result.err == ("newsletter: issue must look like YYYY-MM (e.g. 2026-12), "
                          "not '2026-13'\n")


def test_bad_now_exits_2(project):
    result = project.cli("new", "--now", "tomorrow")
    assert result.code == 2
    assert result.err == "newsletter: --now must be an ISO 8601 date-time, not 'tomorrow'\n"


def build(project, tmp_path):  # noqa: ANN201 - (CliResult, out directory)
    project.copy_sample_issue()
    out = tmp_path / "preview"
    return project.cli("build", "2026-11", "--no-screenshots", "--out", str(out)), out


def test_build_writes_html_text_and_a_sample_message_and_prints_sizes(project, tmp_path):
    result, out = build(project, tmp_path)
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["email.html", "email.txt", "sample.eml"]
    lines = result.out.splitlines()
    assert len(lines) == 4
    for line, name in zip(lines, ["email.html", "email.txt", "sample.eml"], strict=False):
        size = (out / name).stat().st_size / 1024
        assert line == f"  {out / name}  {size:.1f} KB"
    assert re.fullmatch(
        r"built 2026-11 \(en\): 5 sections, 9 feed items, HTML \d+\.\d KB inlined "
        rf"\(Gmail clips at 102 KB\), 3 files in {re.escape(str(out))} in \d+\.\d s", lines[3])
    assert result.err == ""


def test_build_preview_is_personalised_for_a_sample_reader(project, tmp_path):
    _, out = build(project, tmp_path)
    html = (out / "email.html").read_text(encoding="utf-8")
    text = (out / "email.txt").read_text(encoding="utf-8")
    for part in (html, text):
        assert "Dear reader," in part
        assert not PLACEHOLDER_RE.search(part)
        assert "https://ipbusiness.example.org/newsletter/unsubscribe/" in part
    assert "<html" not in text


def test_sample_eml_parses_without_defects(project, tmp_path):
    _, out = build(project, tmp_path)
    data = (out / "sample.eml").read_bytes()
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert all(not part.defects for part in message.walk())
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Exporting soon? Protect your brand before you ship"
    assert message["To"] == "reader@example.com"
    assert message["From"].addresses[0].addr_spec == "newsletter@ipbusiness.example.org"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith(
        "<https://ipbusiness.example.org/newsletter/unsubscribe/")
    for subtype, name in (("html", "email.html"), ("plain", "email.txt")):
        content = message.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert content == (out / name).read_text(encoding="utf-8")  # line ends are CRLF on the wire
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_build_defaults_to_build_issue_under_the_project(project):
    project.copy_sample_issue()
    result = project.cli("build", "2026-11", "--no-screenshots")
    assert result.code == 0, result.err
    assert (project.root / "build" / "2026-11" / "email.html").exists()


def test_build_of_a_missing_draft_exits_2_saying_how_to_create_it(project):
    result = project.cli("build", "2027-02", "--no-screenshots")
    assert result.code == 2
    assert result.err == (f"newsletter: {project.issues / '2027-02.md'}: no such draft "
                          "(create it with `newsletter new`)\n")


@pytest.mark.parametrize("command", ["pull", "build", "check"])
def test_a_malformed_issue_exits_2(project, command):
    result = project.cli(command, "Nov-2026")
    assert result.code == 2
    assert "issue must look like YYYY-MM" in result.err


def test_console_script_checks_the_sample_issue(project, newsletter_script):
    project.copy_sample_issue()
    result = newsletter_script("--config", str(project.config_path), "check", "2026-11",
                               "--now", "2026-11-22T10:00", cwd=project.root)  # in its month
    assert result.returncode == 0, result.stderr
    assert result.stdout == "check 2026-11.md: 0 error(s), 0 warning(s)\n"
