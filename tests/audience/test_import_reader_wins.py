"""A reader's own change (preferences page, confirmed subscribe form) wins over later CSV
imports, over real HTTP on 127.0.0.1 and a real SQLite file; the import says what it kept."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest_delivery import REPO, DeliveryProject
from smtp_server import Script, ScriptedServer
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import make_token
from newsletter.store.connect import open_store
from newsletter.store.reader import reader_set_fields

PREFIX = "/newsletter"  # the path of base_url in the sample newsletter.toml
LIST_ID = "ip-for-business.ipbusiness.example.org"
BEFORE_THE_ISSUE = "2026-11-01T00:00"  # send imports the CSV, and nothing is due yet


def row_of(project: DeliveryProject, email: str) -> tuple[str, str, str, str]:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT name, language, tags, status FROM subscribers "
                            "WHERE email = ?", (email,)).fetchone()


def csv_path(project: DeliveryProject) -> Path:
    return project.root / "subscribers" / "sample.csv"


def rewrite_csv(project: DeliveryProject, changes: dict[str, str]) -> dict[str, int]:
    """Replace whole rows (email -> new row text); the line number of each changed row."""
    lines = csv_path(project).read_text(encoding="utf-8").splitlines()
    where = {}
    for number, line in enumerate(lines, start=1):
        email = line.split(",", 1)[0]
        if email in changes:
            lines[number - 1] = changes[email]
            where[email] = number
    csv_path(project).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return where


def save_preferences(origin: str, email: str, name: str, language: str) -> None:
    url = f"{origin}{PREFIX}/preferences/{make_token('test-secret', LIST_ID, email)}"
    assert httpx.get(url).status_code == 200
    assert httpx.post(url, data={"name": name, "language": language}).status_code == 200


@pytest.fixture
def imported(delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> DeliveryProject:
    assert delivery_project.cli("subscribers", "import", str(csv_path(delivery_project))) == 0
    capsys.readouterr()
    return delivery_project


def test_a_readers_own_name_and_language_survive_an_import_that_names_file_and_line(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader, other = imported.addresses[2], imported.addresses[3]
    with running_app(imported.config) as origin:
        save_preferences(origin, reader, "Reader Two-Ways", "fr")
    where = rewrite_csv(imported, {reader: f"{reader},Reader 2,ru,vip",
                                   other: f"{other},Reader Drei,de,"})
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    out, err = capsys.readouterr()
    assert row_of(imported, reader) == ("Reader Two-Ways", "fr", "vip", "active")
    assert row_of(imported, other) == ("Reader Drei", "de", "", "active")  # never touched
    warnings = [line for line in err.splitlines() if reader in line]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"newsletter: warning: {csv_path(imported)}:{where[reader]}: "
                                  f"{reader}: name 'Reader Two-Ways' kept (the reader's own "
                                  "choice, ")
    assert warnings[0].endswith("the CSV says 'Reader 2' (`subscribers import --override "
                                "reader FILE` applies it)")
    assert f"{where[reader]}: {reader}: language 'fr' kept" in warnings[1]
    assert "the CSV says 'ru'" in warnings[1]
    assert other not in err
    assert out.splitlines()[-1] == ("imported: 0 new, 2 updated, 0 rejected, "
                                    "2 reader's own value(s) kept")


def test_a_field_the_reader_saved_unchanged_still_follows_the_csv(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader = imported.addresses[1]
    with running_app(imported.config) as origin:  # the name is saved as it was
        save_preferences(origin, reader, "Reader 1", "es")
    rewrite_csv(imported, {reader: f"{reader},Reader One,en,"})
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    err = capsys.readouterr().err
    assert row_of(imported, reader)[:2] == ("Reader One", "es")
    [kept] = [line for line in err.splitlines() if "(the reader's own choice" in line]
    assert f"{reader}: language 'es' kept" in kept


def test_the_send_path_keeps_a_readers_change_when_the_csv_is_edited_elsewhere_later(
        delivery_project: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader = delivery_project.addresses[4]
    assert delivery_project.cli("send", "--now", BEFORE_THE_ISSUE) == 0  # first import
    with running_app(delivery_project.config) as origin:
        save_preferences(origin, reader, "Rea Four", "zh")
    capsys.readouterr()
    assert delivery_project.cli("send", "--now", BEFORE_THE_ISSUE) == 0  # file unchanged
    out, err = capsys.readouterr()
    assert "sample.csv" not in out + err  # skipped: nothing to import, nothing to say
    newcomer = "late.comer@example.org"
    with csv_path(delivery_project).open("a", encoding="utf-8") as f:  # another editor's edit
        f.write(f"{newcomer},Late Comer,en,\n")
    assert delivery_project.cli("send", "--now", BEFORE_THE_ISSUE) == 0
    out, err = capsys.readouterr()
    assert row_of(delivery_project, reader)[:2] == ("Rea Four", "zh")
    assert row_of(delivery_project, newcomer)[:2] == ("Late Comer", "en")
    assert f"{csv_path(delivery_project)}:6: {reader}: language 'zh' kept" in err
    assert f"{csv_path(delivery_project)}:6: {reader}: name 'Rea Four' kept" in err
    assert (f"{csv_path(delivery_project)}: 7 address(es), 1 new, 0 updated, 0 duplicate "
            "row(s) merged, 0 rejected, 2 reader's own value(s) kept") in out


def test_override_reader_applies_the_csv_and_hands_the_field_back_to_it(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader = imported.addresses[0]
    with running_app(imported.config) as origin:
        save_preferences(origin, reader, "Zero", "ar")
    conn = open_store(imported.db)
    try:
        assert set(reader_set_fields(conn, reader)) == {"name", "language"}
        assert imported.cli("subscribers", "import", "--override", "reader",
                            str(csv_path(imported))) == 0
        out, err = capsys.readouterr()
        assert row_of(imported, reader)[:2] == ("Reader 0", "en")
        assert err == ""
        assert "0 new, 1 updated, 0 duplicate row(s) merged, 0 rejected, 2 reader's own " \
               "value(s) replaced" in out
        assert reader_set_fields(conn, reader) == {}
    finally:
        conn.close()
    rewrite_csv(imported, {reader: f"{reader},Reader Zero,en,"})  # the CSV's again
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    assert row_of(imported, reader)[:2] == ("Reader Zero", "en")


def test_an_override_for_an_unknown_party_is_a_usage_error(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as caught:
        imported.cli("subscribers", "import", "--override", "everyone", str(csv_path(imported)))
    assert caught.value.code == 2
    assert "invalid choice: 'everyone'" in capsys.readouterr().err


def test_a_readers_unsubscribe_is_never_undone_by_an_import_even_with_override(
        imported: DeliveryProject) -> None:
    reader = imported.addresses[5]
    token = make_token("test-secret", LIST_ID, reader)
    with running_app(imported.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                           data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 200 and row_of(imported, reader)[3] == "unsubscribed"
    rewrite_csv(imported, {reader: f"{reader},Reader Five,en,back"})
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    assert imported.cli("subscribers", "import", "--override", "reader",
                        str(csv_path(imported))) == 0
    assert row_of(imported, reader) == ("Reader Five", "en", "back", "unsubscribed")


def test_the_language_chosen_on_a_confirmed_subscribe_form_is_the_readers_own(
        imported: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys: pytest.CaptureFixture) -> None:
    email = "nia.reader@example.org"
    with running_app(imported.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": email, "language": "fr"})
        assert deliver_queued(imported.config).sent == 1
        text = smtp_script.parsed(email)[-1].get_body(("plain",)).get_content()
        link = re.search(r"https://\S+/confirm/\S+", text)[0]
        done = httpx.post(origin + PREFIX + link.split(PREFIX, 1)[1])
        assert done.status_code == 200
    with csv_path(imported).open("a", encoding="utf-8") as f:  # an editor's list has her too
        f.write(f"{email},Nia Reader,en,\n")
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    err = capsys.readouterr().err
    # The name she left blank is the CSV's to fill; the language she chose stays hers.
    assert row_of(imported, email) == ("Nia Reader", "fr", "", "active")
    assert f"{email}: language 'fr' kept" in err and f"{email}: name" not in err


def test_the_csv_spelling_an_address_in_another_case_still_meets_the_readers_choice(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader = imported.addresses[3]
    with running_app(imported.config) as origin:
        save_preferences(origin, reader, "Reader 3", "ru")
    where = rewrite_csv(imported, {reader: f"{reader.upper()},Reader 3,es,"})
    assert imported.cli("subscribers", "import", str(csv_path(imported))) == 0
    assert row_of(imported, reader)[:2] == ("Reader 3", "ru")
    assert f"{csv_path(imported)}:{where[reader]}: {reader}: language 'ru' kept" in \
        capsys.readouterr().err


def test_an_editors_add_of_a_known_address_keeps_the_readers_language_and_says_so(
        imported: DeliveryProject, capsys: pytest.CaptureFixture) -> None:
    reader = imported.addresses[1]
    with running_app(imported.config) as origin:
        save_preferences(origin, reader, "Reader 1", "zh")
    assert imported.cli("subscribers", "add", reader, "--name", "Reader Uno",
                        "--language", "es") == 0
    err = capsys.readouterr().err
    assert row_of(imported, reader)[:2] == ("Reader Uno", "zh")  # the name was never hers
    assert f"subscribers add: {reader}: language 'zh' kept (the reader's own choice, " in err
    assert "this command says 'es'" in err and f"{reader}: name" not in err


def test_a_deleted_subscriber_leaves_no_reader_mark_behind(imported: DeliveryProject) -> None:
    reader = imported.addresses[2]
    with running_app(imported.config) as origin:
        save_preferences(origin, reader, "Gone Soon", "fr")
    conn = open_store(imported.db)  # foreign keys on, as the program runs
    try:
        assert conn.execute("SELECT count(*) FROM reader_fields").fetchone()[0] == 2
        with conn.transaction():
            conn.execute("DELETE FROM subscribers WHERE email = ?", (reader,))
        assert conn.execute("SELECT count(*) FROM reader_fields").fetchone()[0] == 0
    finally:
        conn.close()


def test_make_help_says_send_imports_only_the_files_listed_in_the_config() -> None:
    done = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True,
                          check=True, timeout=60)
    [send] = [line for line in done.stdout.splitlines() if line.split()[:2] == ["make", "send"]]
    assert "import the CSV files listed in newsletter.toml" in send
    assert "*.csv" not in done.stdout
