"""`subscribers import` streams the CSV (issue 17): the database it leaves is the one the
whole-file import left, across batch boundaries; a bad row near the end of a file bigger than
a batch is rejected as before, a broken file or a crash leaves nothing half-imported; and
peak memory does not grow with the file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.audience import importing
from newsletter.audience.consent import forget_key, plan_import, record_new
from newsletter.audience.subscribers import read_csv
from newsletter.config import Config, load_config
from newsletter.errors import InputError
from newsletter.model import Subscriber
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.db import Db
from newsletter.store.reader import mark_reader_set, merge_subscribers

REPO = Path(__file__).resolve().parents[2]
HEADER = "email,name,language,tags\n"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    shutil.copy(REPO / "newsletter.toml", tmp_path / "newsletter.toml")
    return load_config(tmp_path / "newsletter.toml")


def reference_import(db: Db, config: Config, path: Path) -> importing.FileImport:
    """The import as it was before it streamed: the whole file parsed, then merged."""
    parsed = read_csv(path, default_language=config.default_language)
    warnings = [str(row) for row in parsed.rejected] + list(parsed.notes)
    plan = plan_import(db, config, str(path), parsed.subscribers, parsed.lines,
                       datetime.now(UTC))
    warnings += plan.skipped
    merged = merge_subscribers(db, plan.subscribers)
    record_new(db, plan.events)
    line_of = {s.email.lower(): n for s, n in zip(parsed.subscribers, parsed.lines, strict=True)}
    warnings += [c.describe(f"{path}:{line_of.get(c.email.lower(), '?')}") for c in merged.kept]
    store_subscribers.record_import(db, str(path.resolve()), "")
    return importing.FileImport(str(path), len(parsed.subscribers), merged.added,
                                merged.updated, parsed.merged, len(parsed.rejected),
                                len(merged.kept), merged.overridden, len(plan.skipped),
                                tuple(warnings))


def prepared(path: Path, config: Config) -> Db:
    """A list that already holds a reader who left, one who set their own name, and one
    who asked to be forgotten."""
    db = open_store(path)
    store_subscribers.upsert_subscribers(db, [Subscriber("left@example.org", "Left"),
                                              Subscriber("own@example.org", "Own", "fr")])
    store_subscribers.set_status(db, "left@example.org", "unsubscribed", "link")
    with db.transaction():
        mark_reader_set(db, store_subscribers.get_subscriber(db, "own@example.org").id,
                        ["name"], "2026-01-02T03:04:05Z")
        db.execute("INSERT INTO forgotten (key_hash, forgotten_on) VALUES (?, '2026-02-03')",
                   (forget_key("test-secret", config.list_id, "gone@example.org"),))
    return db


def tricky_csv(path: Path) -> Path:
    """350 rows with repeats that straddle batches of 100, a spelling in another case, the
    three prepared readers, rejected and blank rows."""
    rows = [f"r{i}@example.org,{'' if i % 3 else f'Name {i}'},{('en', 'fr', '')[i % 3]},"
            f"t{i % 4}" for i in range(300)]
    rows += [f"r{i}@example.org,Later {i},es,x{i % 5}" for i in range(0, 300, 7)]
    rows[150:150] = ["R5@example.org,,,upper", "not-an-address,,,", ",,,", "gone@example.org,G,,",
                     "left@example.org,Back,,", "own@example.org,CSV name,en,"]
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def dump(db: Db) -> tuple[list, list, list]:
    return ([tuple(r) for r in db.all("SELECT id, email, name, language, tags, status, reason "
                                      "FROM subscribers ORDER BY id")],
            [tuple(r) for r in db.all("SELECT email, action, source, detail FROM "
                                      "consent_events ORDER BY id")],
            [tuple(r) for r in db.all("SELECT subscriber_id, field FROM reader_fields "
                                      "ORDER BY 1, 2")])


@pytest.mark.skipif(os.environ.get("NEWSLETTER_TEST_ENGINE") == "postgresql",
                    reason="two databases side by side; tests/pg_engine.py makes every "
                           "file the one PostgreSQL test database")
def test_the_streamed_import_leaves_the_database_the_whole_file_import_left(
        tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "BATCH", 100)
    csv = tricky_csv(tmp_path / "list.csv")
    with prepared(tmp_path / "before.db", config) as before, \
            prepared(tmp_path / "after.db", config) as after:
        expected = reference_import(before, config, csv)
        streamed = importing.import_file(after, config, csv)
        assert streamed == expected
        assert dump(after) == dump(before)
    assert (streamed.added, streamed.merged, streamed.rejected, streamed.kept,
            streamed.skipped) == (300, 44, 1, 1, 1)


def big_csv(path: Path, rows: int, tail: str = "") -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        out.writelines(f"reader{i}@example{i % 89}.org,Reader {i},en,news\n" for i in range(rows))
        out.write(tail)
    return path


def test_a_bad_row_near_the_end_of_a_file_bigger_than_a_batch_is_rejected_and_the_rest_kept(
        tmp_path: Path, config: Config) -> None:
    rows = importing.BATCH + 200
    csv = big_csv(tmp_path / "big.csv", rows, "bad@@example.org,Bad,,\nlast@example.org,,,\n")
    with open_store(tmp_path / "t.db") as db:
        done = importing.import_file(db, config, csv)
        assert (done.added, done.rejected) == (rows + 1, 1)
        assert done.warnings[0].startswith(f"{csv}:{rows + 2}: 'bad@@example.org' is not a "
                                           "valid address")
        assert store_subscribers.get_subscriber(db, "last@example.org") is not None
        assert importing.import_file(db, config, csv, quiet=True) is None  # digest recorded


def test_a_broken_quote_at_the_end_of_a_big_file_imports_nothing(
        tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "BATCH", 100)
    csv = big_csv(tmp_path / "q.csv", 450, 'late@example.org,"Late\n' + "x" * 200_000 + "\n")
    with open_store(tmp_path / "t.db") as db:
        with pytest.raises(InputError) as caught:
            importing.import_file(db, config, csv)
        assert str(caught.value).startswith(f"{csv}: line 452: field larger than field limit")
        assert dump(db) == ([], [], [])
        assert store_subscribers.imported_digest(db, str(csv.resolve())) == ""


def test_a_crash_in_the_middle_of_the_merge_leaves_nothing_half_imported(
        tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "BATCH", 100)
    real, calls = importing.merge_rows, []

    def crash_on_the_third_batch(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk gone")
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "merge_rows", crash_on_the_third_batch)
    csv = big_csv(tmp_path / "c.csv", 450)
    with open_store(tmp_path / "t.db") as db:
        with pytest.raises(OSError):
            importing.import_file(db, config, csv)
        assert dump(db) == ([], [], [])
        assert store_subscribers.imported_digest(db, str(csv.resolve())) == ""


# The child: the real `subscribers import` with the address syntax check replaced by a cheap
# one. validate_email keeps nothing between rows but is most of the time; without it the two
# files import in seconds and what is measured is the reading, staging and merging.
CHILD = """
import resource, sys
from types import SimpleNamespace
import newsletter.audience.subscribers as subscribers
def cheap(value, **_):
    domain = value.rpartition('@')[2]
    return SimpleNamespace(ascii_email=value, domain=domain, ascii_domain=domain)
subscribers.validate_email = cheap
from newsletter.cli.main import main
code = main(["--config", sys.argv[1], "subscribers", "import", sys.argv[2]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def start_import(tmp_path: Path, rows: int) -> tuple[Path, subprocess.Popen[str]]:
    root = tmp_path / f"p{rows}"
    root.mkdir()
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    csv = big_csv(root / "list.csv", rows)
    return root, subprocess.Popen([sys.executable, "-c", CHILD, str(root / "newsletter.toml"),
                                   str(csv)], cwd=root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)


def peak_mb(root: Path, child: subprocess.Popen[str], rows: int) -> float:
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    with sqlite3.connect(root / "newsletter.db") as conn:
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone()[0] == rows
    return int(err.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Side by side (each child's own peak is measured): the test takes as long as the larger.
    runs = {rows: start_import(tmp_path, rows) for rows in (20_000, 200_000)}
    small, large = (peak_mb(*runs[rows], rows) for rows in (20_000, 200_000))
    assert large <= small + 25, f"20,000 rows: {small:.0f} MB; 200,000 rows: {large:.0f} MB"
