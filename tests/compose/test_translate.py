"""Translations: `new ISSUE.LANG`, per-section staleness, and the six-language sample."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest_delivery import REPO, DeliveryProject, make_delivery_project
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.translate import short_diff, source_sections, split_draft
from newsletter.compose.xliff_segments import render_body, split_document

NOW = "2026-11-22T10:00"
SAMPLE_LANGUAGES = ("ar", "es", "fr", "ru", "zh")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    return make_delivery_project(tmp_path / "nl", 0)


def check(project: DeliveryProject, capsys, edition: str) -> tuple[int, str]:
    """check a translation as the translator does: its snapshot pulled first (check itself
    fetches nothing)."""
    if not (project.root / "issues" / f"{edition}.items.yaml").exists():
        project.cli("pull", edition, "--now", NOW)  # a bad draft fails here; check says why
    capsys.readouterr()
    code = project.cli("check", edition, "--now", NOW)
    return code, capsys.readouterr().out


def edit_default(project: DeliveryProject, old: str, new: str) -> None:
    default = project.root / "issues" / "2026-11.md"
    text = default.read_text(encoding="utf-8")
    assert old in text
    default.write_text(text.replace(old, new), encoding="utf-8")


def test_new_issue_lang_copies_the_default_as_a_draft_translated_from_each_section(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    assert "created" in capsys.readouterr().out
    made = (project.root / "issues" / "2026-11.de.md").read_text(encoding="utf-8")
    default = (project.root / "issues" / "2026-11.md").read_text(encoding="utf-8")
    assert made.split("\n---\n", 1)[1] == default.split("\n---\n", 1)[1]
    assert 'status: "draft"' in made and "status: ready" not in made
    assert 'subject: "Exporting soon? Protect your brand before you ship"' in made
    versions = dict(re.findall(r'^  "([^"]+)": "([0-9a-f]{12})"$', made, re.MULTILINE))
    assert list(versions) == ["intro", "Trademarks for small exporters",
                              "Case study: one valley, one shared mark",
                              "National or international route: what does it cost?",
                              "Free tools"]
    assert (project.root / "issues" / "2026-11.de.source.yaml").exists()
    code, out = check(project, capsys, "2026-11.de")
    assert code == 0 and "check 2026-11.de.md: 0 error(s), 1 warning(s)" in out
    assert "status is 'draft'" in out


def test_a_new_translation_does_not_inherit_the_default_editions_approval(
        project: DeliveryProject) -> None:
    edit_default(project, "status: ready\n",
                 "status: ready\napproved_by:\n  name: Ana Lima\n  date: 2026-11-02\n")
    assert project.cli("new", "2026-11.de") == 0
    made = (project.root / "issues" / "2026-11.de.md").read_text(encoding="utf-8")
    assert "approved_by" not in made and "Ana Lima" not in made
    assert 'status: "draft"' in made


def test_new_translation_refuses_an_existing_file_the_default_language_and_no_default(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    assert project.cli("new", "2026-11.de") == 2
    assert "2026-11.de.md: already exists" in capsys.readouterr().err
    assert project.cli("new", "2026-11.en") == 2
    assert "'en' is the default language" in capsys.readouterr().err
    assert project.cli("new", "2026-12.de") == 2
    assert "no default edition to translate" in capsys.readouterr().err
    assert project.cli("new", "2026-11.Not/a/lang") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_check_names_only_the_section_that_changed_with_a_short_diff(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    edit_default(project, "six employees", "seven employees")
    code, out = check(project, capsys, "2026-11.de")
    assert code == 0
    stale = [line for line in out.splitlines() if "changed since it was translated" in line]
    assert len(stale) == 1
    assert 'section "Case study: one valley, one shared mark" of 2026-11.md' in stale[0]
    assert re.search(r'\.de\.md:8: warning: ', stale[0])  # the translated_from line
    assert ("    -Casa Verdello is a family olive-oil producer with 14 hectares of groves and "
            "six employees.") in out
    assert "    +Casa Verdello is a family olive-oil producer with 14 hectares of groves and " \
           "seven employees." in out
    new_version = re.search(r'-> ([0-9a-f]{12})\)', stale[0])[1]
    draft = project.root / "issues" / "2026-11.de.md"
    text = draft.read_text(encoding="utf-8")
    text = re.sub(r'("Case study: one valley, one shared mark": )"[0-9a-f]{12}"',
                  rf'\1"{new_version}"', text)
    draft.write_text(text, encoding="utf-8")
    code, out = check(project, capsys, "2026-11.de")
    assert "changed since" not in out and "1 warning(s)" in out


def test_translate_done_records_a_section_and_keeps_its_text_for_the_next_diff(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    edit_default(project, "six employees", "seven employees")
    _, out = check(project, capsys, "2026-11.de")
    assert ("`newsletter translate done 2026-11.de 'Case study: one valley, one shared "
            "mark'`") in out
    assert project.cli("translate", "done", "2026-11.de",
                       "Case study: one valley, one shared mark") == 0
    assert "for 1 section(s): Case study" in capsys.readouterr().out
    edit_default(project, "seven employees", "eight employees")
    _, out = check(project, capsys, "2026-11.de")
    assert "    -Casa Verdello is a family olive-oil producer with 14 hectares of groves and " \
           "seven employees." in out  # the diff starts from the text marked done
    assert project.cli("translate", "done", "2026-11.de", "No such section") == 2
    assert "no section 'No such section' in 2026-11.md" in capsys.readouterr().err


def test_added_and_removed_sections_are_named(project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    edit_default(project, "## Free tools", "## Resources")
    _, out = check(project, capsys, "2026-11.de")
    assert ('section "Resources" is new in 2026-11.md: translate it, then '
            '`newsletter translate done 2026-11.de Resources`') in out
    assert 'section "Free tools" is no longer in 2026-11.md' in out
    assert project.cli("translate", "done", "2026-11.de") == 0
    _, out = check(project, capsys, "2026-11.de")
    assert "Resources" not in out and "Free tools" not in out and "1 warning(s)" in out


def test_without_the_sidecar_check_still_names_the_section_but_shows_no_diff(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    (project.root / "issues" / "2026-11.de.source.yaml").unlink()
    edit_default(project, "six employees", "seven employees")
    _, out = check(project, capsys, "2026-11.de")
    assert "changed since it was translated" in out
    assert "not in 2026-11.de.source.yaml, so no diff" in out and "    -Casa" not in out


def test_the_old_single_hash_form_still_marks_the_whole_edition(
        project: DeliveryProject, capsys) -> None:
    for name in ("2026-11.fr.md", "2026-11.fr.items.yaml"):
        shutil.copy(SAMPLE_ISSUES / name, project.root / "issues" / name)
    code, out = check(project, capsys, "2026-11.fr")
    assert code == 0 and "0 error(s), 0 warning(s)" in out
    edit_default(project, "six employees", "seven employees")
    _, out = check(project, capsys, "2026-11.fr")
    assert "older than 2026-11.md (translated from 83722396a24f" in out


def test_a_bad_translated_from_mapping_is_a_draft_error_with_its_line(
        project: DeliveryProject, capsys) -> None:
    assert project.cli("new", "2026-11.de") == 0
    draft = project.root / "issues" / "2026-11.de.md"
    text = draft.read_text(encoding="utf-8")
    draft.write_text(re.sub(r'("intro": )"[0-9a-f]{12}"', r'\1"not a version"', text),
                     encoding="utf-8")
    code, out = check(project, capsys, "2026-11.de")
    assert code == 1
    assert "2026-11.de.md:8: error: front matter: 'translated_from' entry 'intro'" in out


def test_a_diff_is_by_sentence_and_short() -> None:
    old = "One. Two three. Four."
    assert short_diff(old, "One. Two tree. Four.") == ("-Two three.", "+Two tree.")
    long = " ".join(f"Sentence {n}." for n in range(20))
    lines = short_diff("", long)
    assert len(lines) == 9 and lines[-1] == "... (12 more lines)"


def test_sections_are_keyed_by_heading_and_duplicates_numbered() -> None:
    body = "Intro.\n\n## A\n\nx\n\n```\n## not a heading\n```\n\n## A\n\ny\n"
    assert [s.key for s in source_sections(body)] == ["intro", "A", "A (2)"]


@pytest.mark.parametrize("language", SAMPLE_LANGUAGES)
def test_each_sample_edition_checks_clean(project: DeliveryProject, capsys,
                                          language: str) -> None:
    for suffix in ("md", "items.yaml"):
        name = f"2026-11.{language}.{suffix}"
        shutil.copy(SAMPLE_ISSUES / name, project.root / "issues" / name)
    for sidecar in (SAMPLE_ISSUES).glob(f"2026-11.{language}.source.yaml"):
        shutil.copy(sidecar, project.root / "issues" / sidecar.name)
    code, out = check(project, capsys, f"2026-11.{language}")
    assert code == 0 and f"check 2026-11.{language}.md: 0 error(s), 0 warning(s)" in out, out


def test_the_sample_ships_in_six_languages_each_with_a_footer_text() -> None:
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    for language in SAMPLE_LANGUAGES:
        assert (REPO / "issues" / f"2026-11.{language}.md").exists()
        assert f"[translations.{language}]" in config


@pytest.mark.parametrize("language", ("", *SAMPLE_LANGUAGES))
def test_every_sample_survives_the_unit_split_unchanged(language: str) -> None:
    path = SAMPLE_ISSUES / (f"2026-11.{language}.md" if language else "2026-11.md")
    _, body = split_draft(path, path.read_text(encoding="utf-8"))
    doc = split_document("subject", "preheader", body)
    assert render_body(doc, {u.id: u.content for u in doc.units}) == body
