"""The subscriber side of the store on real SQLite files: every function of
store.subscribers, a transaction that fails rolls back, open_store's URLs, and a file the
program cannot use is one StoreError line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.model import Subscriber
from newsletter.store import subscribers as store
from newsletter.store.connect import URL_ENV, database_url, open_store
from newsletter.store.db import Db, IntegrityError, StoreError
from newsletter.store.reader import reader_set_fields


@pytest.fixture
def db(tmp_path: Path) -> Db:
    with open_store(tmp_path / "t.db") as handle:
        yield handle


ANN = Subscriber("ann@example.org", "Ann", "fr", ("members", "paris"))
BO = Subscriber("bo@example.org", "Bo", "en")


def test_upsert_adds_new_addresses_and_refreshes_known_ones_but_never_status(db: Db) -> None:
    assert store.upsert_subscribers(db, [ANN, BO]) == (2, 0)
    store.set_status(db, "bo@example.org", "unsubscribed", "link")

    assert store.upsert_subscribers(db, [replace(ANN, name="Ann B."), BO]) == (0, 1)

    assert store.get_subscriber(db, "ann@example.org").name == "Ann B."
    assert store.get_subscriber(db, "bo@example.org").status == "unsubscribed"


def test_get_subscriber_by_address_in_any_case_and_by_id(db: Db) -> None:
    store.upsert_subscribers(db, [ANN])
    sub = store.get_subscriber(db, "ANN@Example.ORG")

    assert sub == replace(ANN, id=sub.id) and sub.id > 0
    assert store.get_subscriber_by_id(db, sub.id) == sub
    assert store.get_subscriber(db, "nobody@example.org") is None
    assert store.get_subscriber_by_id(db, 999) is None


def test_add_subscriber_returns_the_status_afterwards_and_never_reactivates(db: Db) -> None:
    assert store.add_subscriber(db, ANN) == "active"
    store.set_status(db, ANN.email, "unsubscribed", "link")

    assert store.add_subscriber(db, ANN) == "unsubscribed"


def test_set_status_says_whether_the_address_exists(db: Db) -> None:
    store.upsert_subscribers(db, [ANN])

    assert store.set_status(db, "Ann@example.org", "bounced", "550 5.1.1") is True
    assert store.set_status(db, "nobody@example.org", "bounced") is False
    assert (store.get_subscriber(db, ANN.email).status,
            store.get_subscriber(db, ANN.email).reason) == ("bounced", "550 5.1.1")


def test_iter_subscribers_pages_in_id_order_and_filters_by_status(db: Db) -> None:
    store.upsert_subscribers(db, [Subscriber(f"s{i}@example.org") for i in range(7)])
    store.set_status(db, "s3@example.org", "unsubscribed")

    assert [s.email for s in store.iter_subscribers(db, page=2)] == \
        [f"s{i}@example.org" for i in range(7)]
    assert [s.email for s in store.iter_subscribers(db, "unsubscribed", page=2)] == \
        ["s3@example.org"]
    assert list(store.iter_subscribers(db, "bounced")) == []


def test_counts_by_status_and_languages_of_active_readers(db: Db) -> None:
    store.upsert_subscribers(db, [ANN, BO, Subscriber("cy@example.org", language="fr")])
    store.set_status(db, "cy@example.org", "complained")

    assert store.subscriber_counts(db) == {"active": 2, "complained": 1}
    assert store.subscriber_languages(db) == {"fr": 1, "en": 1}


def test_update_profile_makes_the_changed_fields_the_readers_own(db: Db) -> None:
    store.upsert_subscribers(db, [ANN])

    store.update_profile(db, ANN.email, "Ann", "es")

    assert store.get_subscriber(db, ANN.email).language == "es"
    assert list(reader_set_fields(db, ANN.email)) == ["language"]  # the name was unchanged
    store.update_profile(db, "nobody@example.org", "X", "en")  # no row: nothing happens


def test_imported_digest_is_the_last_one_recorded_per_file(db: Db) -> None:
    assert store.imported_digest(db, "subscribers/a.csv") == ""
    store.record_import(db, "subscribers/a.csv", "abc")
    store.record_import(db, "subscribers/a.csv", "def")
    store.record_import(db, "subscribers/b.csv", "123")

    assert store.imported_digest(db, "subscribers/a.csv") == "def"
    assert store.imported_digest(db, "subscribers/b.csv") == "123"


def test_a_transaction_that_fails_leaves_nothing_behind(db: Db) -> None:
    store.upsert_subscribers(db, [ANN])
    with pytest.raises(IntegrityError), db.transaction():
        db.execute("UPDATE subscribers SET name = 'changed'")
        store.record_import(db, "subscribers/a.csv", "abc")
        db.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES "
                   "('ANN@example.org', 'x', 'x')")  # the address is unique in any case

    assert store.get_subscriber(db, ANN.email).name == "Ann"
    assert store.imported_digest(db, "subscribers/a.csv") == ""
    assert not db.in_transaction


def test_an_error_raised_inside_a_transaction_rolls_it_back(db: Db) -> None:
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES "
                   "('new@example.org', 'x', 'x')")
        raise RuntimeError("the caller gave up")

    assert store.get_subscriber(db, "new@example.org") is None


# --- open_store: URLs and files ---------------------------------------------------------

@pytest.mark.sqlite_only  # the files it makes and their mode
def test_open_store_takes_a_path_or_a_sqlite_url(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for target, made in [(tmp_path / "a.db", tmp_path / "a.db"), ("b.db", tmp_path / "b.db"),
                         ("sqlite:///c.db", tmp_path / "c.db"),
                         (f"sqlite:///{tmp_path}/d%20e.db", tmp_path / "d e.db")]:
        open_store(target).close()
        assert made.is_file(), target
        assert made.stat().st_mode & 0o777 == 0o600  # personal data: the owner's alone


@pytest.mark.sqlite_only  # SQLite's PRAGMAs
def test_an_opened_file_is_in_wal_mode_with_foreign_keys_on(db: Db) -> None:
    assert db.one("PRAGMA journal_mode")[0] == "wal"  # readers never block the sender
    assert db.one("PRAGMA foreign_keys")[0] == 1
    assert db.one("PRAGMA synchronous")[0] == 1  # NORMAL


def test_an_unknown_scheme_is_one_line_naming_only_the_scheme() -> None:
    with pytest.raises(StoreError) as unknown:
        open_store("postgresx://ann:s3cret@db.example.org/list")

    message = str(unknown.value)
    assert message.startswith("database: unknown URL scheme 'postgresx': this program opens ")
    assert "s3cret" not in message and "\n" not in message


def test_a_sqlite_url_without_a_file_is_refused() -> None:
    with pytest.raises(StoreError, match="a sqlite URL names a file"):
        open_store("sqlite:///")


def test_database_url_prefers_the_environment_then_store_url_then_path(tmp_path: Path) -> None:
    from newsletter.config import load_config

    (tmp_path / "newsletter.toml").write_text(CONFIG + '[store]\npath = "p.db"\n')
    config = load_config(tmp_path / "newsletter.toml")
    assert database_url(config, {}) == str(tmp_path / "p.db")

    (tmp_path / "newsletter.toml").write_text(CONFIG + '[store]\nurl = "sqlite:///u.db"\n')
    config = load_config(tmp_path / "newsletter.toml")
    assert config.store_path == tmp_path / "u.db"  # the send lock sits beside that file
    assert database_url(config, {}) == f"sqlite:///{tmp_path / 'u.db'}"
    assert database_url(config, {URL_ENV: "sqlite:///e.db"}) == f"sqlite:///{tmp_path / 'e.db'}"
    assert database_url(config, {URL_ENV: "postgresql://h/db"}) == "postgresql://h/db"


@pytest.mark.sqlite_only  # a file that is no SQLite database
def test_a_corrupt_file_is_one_store_error_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database, only text " * 200)

    with pytest.raises(StoreError) as corrupt:
        open_store(path)

    assert str(corrupt.value) == f"{path}: database: file is not a database"
    assert corrupt.value.exit_code == 1


@pytest.mark.sqlite_only  # the file's permissions
def test_a_read_only_file_opens_and_its_first_write_is_one_store_error_line(
        tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with open_store(path) as db:
        store.upsert_subscribers(db, [ANN])
    with _read_only(path), open_store(path) as db:
        assert store.get_subscriber(db, ANN.email).name == "Ann"  # reading still works
        with pytest.raises(StoreError) as refused:
            store.set_status(db, ANN.email, "unsubscribed")

    assert str(refused.value) == "database: attempt to write a readonly database"
    assert refused.value.exit_code == 1


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """No write for this process: chmod for a user; for root (who writes any file) the
    immutable attribute, where the file system has one."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        yield
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("root writes any file, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.sqlite_only  # a file that is no SQLite database
def test_the_file_is_unchanged_by_a_failed_open(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(StoreError):
        open_store(path)
    assert path.read_bytes() == b"x" * 4096
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT 1 FROM sqlite_master").fetchall()


CONFIG = """\
[newsletter]
name = "Test"
from = "Test <news@example.org>"
base_url = "https://news.example.org"
list_id = "test.example.org"
default_language = "en"
timezone = "UTC"
organisation = "Test"
postal_address = "1 Street"
reason = "You subscribed."

"""
