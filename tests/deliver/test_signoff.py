"""Sign-off: with [review] required = true an edition is sent only with `approved_by` (a name
and a date) in its own front matter; check and send enforce it, per language."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer

NOW = "2026-11-22T10:00"
SNAPSHOT = """issue: 2026-11
pulled_at: '2026-11-22T09:00:00Z'
window:
  start: '2026-10-01T00:00:00Z'
  end: '2026-11-05T08:00:00Z'
items: []
"""
TITLES = {"": "Trademarks for exporters", "fr": "Les marques à l'export",
          "es": "Marcas para exportar"}


def require_review(project: DeliveryProject, value: str = "true") -> None:
    with project.config.open("a", encoding="utf-8") as config:
        config.write(f"\n[review]\nrequired = {value}\n")


def write_edition(project: DeliveryProject, language: str = "", approved: str = "") -> Path:
    suffix = f".{language}" if language else ""
    path = project.root / "issues" / f"2026-11{suffix}.md"
    path.write_text(f"""---
subject: "Sign-off {language or 'en'}"
preheader: "Reviewed before it goes."
status: ready
send_at: 2026-11-05T09:00
{approved}---
Hello.

## {TITLES[language]}

Register before you ship.
""", encoding="utf-8")
    (project.root / "issues" / f"2026-11{suffix}.items.yaml").write_text(SNAPSHOT,
                                                                        encoding="utf-8")
    return path


def write_readers(project: DeliveryProject, rows: list[tuple[str, str]]) -> None:
    lines = ["email,name,language,tags"] + [f"{a},,{lang}," for a, lang in rows]
    (project.root / "subscribers" / "sample.csv").write_text("\n".join(lines) + "\n",
                                                            encoding="utf-8")


def body_of(script: Script, address: str) -> str:
    [message] = script.parsed(address)
    return message.get_body(("html",)).get_content()


def test_check_errors_on_a_ready_edition_without_approved_by_naming_its_line(
        delivery_project: DeliveryProject, capsys) -> None:
    require_review(delivery_project)
    path = write_edition(delivery_project)
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 1
    out = capsys.readouterr().out
    status_line = path.read_text(encoding="utf-8").split("\n").index("status: ready") + 1
    assert f"{path}:{status_line}: error: [review] required = true and there is no " \
           "approved_by" in out


@pytest.mark.parametrize("approved", [
    'approved_by: {name: "Ana Lima", date: 2026-11-03}\n',
    'approved_by: "Ana Lima, 2026-11-03"\n',
])
def test_check_accepts_an_approval_with_a_name_and_a_date(
        delivery_project: DeliveryProject, capsys, approved: str) -> None:
    require_review(delivery_project)
    write_edition(delivery_project, approved=approved)
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    assert "approved_by" not in capsys.readouterr().out


def test_without_review_required_no_approval_is_needed(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_edition(delivery_project)
    write_readers(delivery_project, [("ana@example.com", "en")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"ana@example.com": 1}


@pytest.mark.parametrize(("approved", "message"), [
    ("approved_by: {name: Ana, date: 5 Jan 2026}\n",
     "'approved_by' date must be an ISO 8601 date like 2027-01-05, not '5 Jan 2026'"),
    ("approved_by: {date: 2026-11-03}\n", "'approved_by' needs a name and a date"),
    ("approved_by: Ana\n", "'approved_by' must be a name and a date"),
    ("approved_by: {name: Ana, date: 2026-11-03, role: chief}\n",
     "'approved_by' has an unknown key 'role'"),
])
def test_an_unusable_approved_by_is_a_front_matter_error_naming_the_line(
        delivery_project: DeliveryProject, capsys, approved: str, message: str) -> None:
    path = write_edition(delivery_project, approved=approved)
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 1
    out, err = capsys.readouterr()
    assert f"{path}:6: error: front matter: {message}" in out
    assert "Traceback" not in out + err


def test_an_approval_dated_after_today_is_a_check_error(
        delivery_project: DeliveryProject, capsys) -> None:
    require_review(delivery_project)
    path = write_edition(delivery_project, approved='approved_by: "Ana Lima, 2027-11-03"\n')
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 1
    assert f"{path}:6: error: approved_by is dated 2027-11-03, after today (2026-11-22)" \
        in capsys.readouterr().out


def test_send_refuses_the_issue_while_its_default_edition_is_not_approved(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    require_review(delivery_project)
    path = write_edition(delivery_project)
    write_readers(delivery_project, [("ana@example.com", "en")])
    assert delivery_project.cli("send", "--now", NOW) == 1
    err = capsys.readouterr().err
    assert f"2026-11: not sent: {path}: [review] required = true and there is no " \
           "approved_by" in err
    assert smtp_script.copies() == {}
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM editions").fetchone()[0] == 0


def test_an_unapproved_translation_waits_while_approved_languages_go_and_follows_once_approved(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    require_review(delivery_project)
    signed = 'approved_by: {name: "Ana Lima", date: 2026-11-03}\n'
    write_edition(delivery_project, approved=signed)
    write_edition(delivery_project, "fr", approved=signed)
    es = write_edition(delivery_project, "es")
    write_readers(delivery_project, [("ann@example.com", "en"), ("fab@example.com", "fr"),
                                     ("eva@example.com", "es")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert f"2026-11: 'es' edition not sent yet: {es}: [review] required = true and there " \
           "is no approved_by" in out
    assert "edition(s) en, fr frozen" in out
    assert TITLES["fr"] in body_of(smtp_script, "fab@example.com").replace("&#x27;", "'")
    # meanwhile the Spanish reader gets the default edition, as for any missing language
    assert TITLES[""] in body_of(smtp_script, "eva@example.com")
    # approved later in the month: the late-edition path sends it to its readers
    write_edition(delivery_project, "es", approved=signed)
    assert delivery_project.cli("send", "--now", "2026-11-23T10:00") == 0
    assert smtp_script.copies()["eva@example.com"] == 2
    assert TITLES["es"] in smtp_script.parsed("eva@example.com")[1].get_body(
        ("html",)).get_content()
    assert smtp_script.copies()["fab@example.com"] == 1


def test_review_required_must_be_true_or_false(delivery_project: DeliveryProject,
                                               capsys) -> None:
    require_review(delivery_project, '"yes"')
    write_edition(delivery_project)
    assert delivery_project.cli("check", "2026-11") == 2
    out, err = capsys.readouterr()
    assert "'review.required' must be true or false" in err
    assert "Traceback" not in out + err


def test_each_language_edition_needs_its_own_approval_in_check(
        delivery_project: DeliveryProject, capsys) -> None:
    require_review(delivery_project)
    signed = 'approved_by: {name: "Ana Lima", date: 2026-11-03}\n'
    write_edition(delivery_project, approved=signed)
    fr = write_edition(delivery_project, "fr")
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    assert f"warning: 'fr' edition not sent yet: {fr}: [review] required = true and there " \
           "is no approved_by" in capsys.readouterr().out
    assert delivery_project.cli("check", "2026-11.fr", "--now", NOW) == 1
    assert f"{fr}:4: error: [review] required = true and there is no approved_by" in \
        capsys.readouterr().out
