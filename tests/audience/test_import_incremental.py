"""A re-import of an edited CSV validates and merges only its new and changed rows (issue 17),
and leaves the list, the counts and the warnings exactly as a whole import of the same file
would: a repeated address still keeps its first line, a removed row unsubscribes no one, a
reader who left, was forgotten or set their own name since is not resubscribed, re-added or
overwritten, and a changed default language or header makes every row go through again."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_import_streaming import dump

from newsletter.audience import importing
from newsletter.audience.forget import forget_reader
from newsletter.config import Config, load_config
from newsletter.model import Subscriber
from newsletter.store import import_seen
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.db import Db
from newsletter.store.reader import save_reader_profile

REPO = Path(__file__).resolve().parents[2]
HEADER = "email,name,language,tags"
ROWS = 3000
ON_POSTGRESQL = os.environ.get("NEWSLETTER_TEST_ENGINE") == "postgresql"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    shutil.copy(REPO / "newsletter.toml", tmp_path / "newsletter.toml")
    return load_config(tmp_path / "newsletter.toml")


def rows(n: int = ROWS) -> list[str]:
    languages = ("en", "fr", "", "ar", "zh", "ru", "es")
    return [f"reader{i}@example{i % 53}.org,{'' if i % 4 else f'Reader {i}'},"
            f"{languages[i % len(languages)]},t{i % 5}" for i in range(n)]


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def imported(db: Db, config: Config, path: Path) -> importing.FileImport:
    done = importing.import_file(db, config, path)
    assert done is not None
    return done


def test_an_edit_of_one_row_of_a_large_file_validates_only_that_row(
        tmp_path: Path, config: Config) -> None:
    lines = rows()
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        first = imported(db, config, csv)
        assert (first.added, first.validated, first.unchanged) == (ROWS, ROWS, 0)
        lines[1234] = "reader1234@example15.org,Renamed,de,t9"
        done = imported(db, config, write(csv, lines))
        assert (done.validated, done.unchanged) == (1, ROWS - 1)
        assert (done.addresses, done.added, done.updated) == (ROWS, 0, 1)
        assert store_subscribers.get_subscriber(db, "reader1234@example15.org") == Subscriber(
            "reader1234@example15.org", "Renamed", "de", ("t9",), id=1235)
        appended = imported(db, config, write(csv, [*lines, "late@example.org,Late,fr,"]))
        assert (appended.validated, appended.unchanged, appended.added) == (1, ROWS, 1)
        again = imported(db, config, csv)  # nothing changed: nothing validated
        assert (again.validated, again.unchanged, again.added, again.updated) == \
            (0, ROWS + 1, 0, 0)


def test_a_removed_row_unsubscribes_no_one_and_a_restored_row_goes_through_again(
        tmp_path: Path, config: Config) -> None:
    lines = rows(300)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        done = imported(db, config, write(csv, lines[:100] + lines[101:]))
        assert (done.validated, done.addresses, done.added, done.updated) == (0, 299, 0, 0)
        assert store_subscribers.get_subscriber(db, "reader100@example47.org").status == \
            "active"
        back = imported(db, config, write(csv, lines))
        assert (back.validated, back.unchanged, back.added, back.updated) == (1, 299, 0, 0)


def test_a_row_copied_within_the_file_is_merged_and_noted_as_a_whole_import_does(
        tmp_path: Path, config: Config) -> None:
    lines = rows(200)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        done = imported(db, config, write(csv, [*lines, lines[10]]))
        assert (done.merged, done.validated, done.unchanged) == (1, 2, 199)
        assert done.warnings == (f"{csv}:202: reader10@example10.org is also on line 12: "
                                 "line 12 is kept, with the tags of both and this line's name",)


def test_a_new_row_above_an_unchanged_one_with_the_same_address_wins_as_the_first_line(
        tmp_path: Path, config: Config) -> None:
    lines = rows(200)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        done = imported(db, config, write(csv, ["READER150@example44.org,First,es,new",
                                                *lines]))
        assert (done.merged, done.validated, done.unchanged) == (1, 2, 199)
        assert done.warnings[0].startswith(f"{csv}:153: READER150@example44.org (as "
                                           "reader150@example44.org) is also on line 2: "
                                           "line 2 is kept")
        sub = store_subscribers.get_subscriber(db, "reader150@example44.org")
        assert (sub.name, sub.language, sub.tags) == ("First", "es", ("new", "t0"))


def test_an_unchanged_row_of_a_reader_who_left_or_set_their_own_name_since_is_not_undone(
        tmp_path: Path, config: Config) -> None:
    lines = rows(100)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        store_subscribers.set_status(db, "reader3@example3.org", "unsubscribed", "link")
        save_reader_profile(db, "reader5@example5.org", "My Own Name", "fr")
        done = imported(db, config, write(csv, [*lines, "new@example.org,,,"]))
        assert store_subscribers.get_subscriber(db, "reader3@example3.org").status == \
            "unsubscribed"
        own = store_subscribers.get_subscriber(db, "reader5@example5.org")
        assert (own.name, own.language) == ("My Own Name", "fr")
        assert done.kept == 2 and len(done.warnings) == 2  # on every import, as before
        assert done.warnings[0].startswith(f"{csv}:7: reader5@example5.org: name 'My Own "
                                           "Name' kept (the reader's own choice")
        assert (done.validated, done.added, done.updated) == (2, 1, 0)
        again = imported(db, config, write(csv, [*lines, "new@example.org,,,", "x@example.org"]))
        assert again.kept == 2 and again.validated == 2  # the warning comes back


def test_a_forgotten_reader_is_not_added_again_and_the_import_still_says_so(
        tmp_path: Path, config: Config) -> None:
    lines = rows(100)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        forget_reader(config, db, "reader7@example7.org", datetime.now(UTC))
        assert db.all("SELECT 1 FROM import_seen s LEFT JOIN subscribers r ON r.id = "
                      "s.subscriber_id WHERE r.id IS NULL") == []
        done = imported(db, config, write(csv, [*lines, "new@example.org,,,"]))
        assert store_subscribers.get_subscriber(db, "reader7@example7.org") is None
        assert (done.skipped, done.validated, done.added) == (1, 2, 1)
        assert done.warnings == (f"{csv}:9: skipped: this reader asked to be forgotten ("
                                 f"{datetime.now(UTC).astimezone(config.timezone).date()}); "
                                 "only they can subscribe again, on the web form",)


def test_an_editors_change_since_goes_back_to_the_csv_as_a_whole_import_does(
        tmp_path: Path, config: Config) -> None:
    lines = rows(100)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        store_subscribers.upsert_subscribers(db, [Subscriber("reader8@example8.org", "Ed",
                                                             "ru", ("x",))])
        done = imported(db, config, write(csv, [*lines, "new@example.org,,,"]))
        assert (done.validated, done.updated) == (2, 1)
        sub = store_subscribers.get_subscriber(db, "reader8@example8.org")
        assert (sub.name, sub.language, sub.tags) == ("Reader 8", "fr", ("t3",))


@pytest.mark.parametrize("change", ["default language", "header order", "other file"])
def test_what_a_rows_meaning_depends_on_changed_then_every_row_goes_through(
        tmp_path: Path, config: Config, change: str) -> None:
    lines = rows(100)
    csv = write(tmp_path / "list.csv", lines)
    with open_store(tmp_path / "t.db") as db:
        imported(db, config, csv)
        if change == "default language":
            config = dataclasses.replace(config, default_language="fr")
            csv = write(csv, [*lines, "new@example.org,,,"])
        elif change == "header order":
            csv = write(csv, [",".join(line.split(",")[i] for i in (1, 0, 2, 3))
                              for line in lines], header="name,email,language,tags")
        else:
            csv = write(tmp_path / "copy.csv", lines)
        done = imported(db, config, csv)
        assert done.unchanged == 0 and done.validated >= 100
        assert done.updated == (14 if change == "default language" else 0)  # '' -> fr


# --- the same sequence with and without skipping leaves the same list and says the same ---

Step = Callable[[Db, Config, Path], None]


def edit_rows(db: Db, config: Config, csv: Path) -> None:
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[40] = "reader39@example39.org,Changed,zh,a;b"
    lines[60:61] = []
    lines.insert(5, "Reader90@EXAMPLE37.org,Upper,,up")
    lines.append("reader70@example17.org,Again,es,again")
    lines.append(lines[20])
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")


def reader_changes(db: Db, config: Config, csv: Path) -> None:
    store_subscribers.set_status(db, "reader3@example3.org", "bounced", "hard")
    save_reader_profile(db, "reader12@example12.org", "Own", "ru")
    forget_reader(config, db, "reader13@example13.org", datetime.now(UTC))
    store_subscribers.upsert_subscribers(db, [Subscriber("reader14@example14.org", "Ed")])
    edit_rows(db, config, csv)


def rejected_rows(db: Db, config: Config, csv: Path) -> None:
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[30] = "not-an-address,,,"
    lines.append("a@example.org,too,many,fields,here")
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.skipif(ON_POSTGRESQL, reason="two databases side by side; tests/pg_engine.py "
                    "makes every file the one PostgreSQL test database")
@pytest.mark.parametrize("steps", [[edit_rows], [reader_changes], [rejected_rows, edit_rows],
                                   [edit_rows, reader_changes, rejected_rows]],
                         ids=["edits", "reader-changes", "rejections", "all"])
def test_skipping_unchanged_rows_leaves_what_the_whole_import_leaves(
        tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch,
        steps: list[Step]) -> None:
    monkeypatch.setattr(importing, "BATCH", 40)  # repeats and edits straddle batches
    results: dict[bool, list[importing.FileImport]] = {True: [], False: []}
    dumps = {}
    real_add_lines = import_seen.add_lines
    for skipping in (True, False):
        csv = write(tmp_path / "list.csv", rows(150))  # the same file, written anew
        with open_store(tmp_path / f"{skipping}.db") as db, monkeypatch.context() as m:
            if not skipping:  # every import as if it were the file's first
                m.setattr(import_seen, "add_lines", lambda db, source, lines, force:
                          real_add_lines(db, None, lines, force))
            results[skipping].append(imported(db, config, csv))
            for step in steps:
                step(db, config, csv)
                results[skipping].append(imported(db, config, csv))
            dumps[skipping] = dump(db)
    assert dumps[True] == dumps[False]
    assert [dataclasses.replace(r, unchanged=0) for r in results[True]] == results[False]
    assert results[True][-1].validated < 20 < results[False][-1].validated
