"""Writes under the project never follow a planted symbolic link, and leave no half file."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from sample_issues import SAMPLE_ISSUES

from newsletter.safe_files import LinkRefused, write_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(project root with issues/, a folder outside it holding a file we must not touch)."""
    root, outside = tmp_path / "project", tmp_path / "outside"
    (root / "issues").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n", encoding="utf-8")
    return root, outside


def _untouched(outside: Path) -> bool:
    return sorted(p.name for p in outside.iterdir()) == ["precious.txt"] and \
        (outside / "precious.txt").read_text(encoding="utf-8") == "keep me\n"


def test_a_write_replaces_the_file_whole_and_leaves_no_temp_file(tree):
    root, _ = tree
    target = root / "issues" / "2026-12.md"
    target.write_text("old\n", encoding="utf-8")

    write_text(target, "new\n", root=root)

    assert target.read_text(encoding="utf-8") == "new\n"
    assert os.listdir(root / "issues") == ["2026-12.md"]


def test_missing_folders_inside_the_project_are_created(tree):
    root, _ = tree
    write_text(root / "build" / "2026-12" / "email.txt", "x", root=root)
    assert (root / "build" / "2026-12" / "email.txt").read_text() == "x"


@pytest.mark.parametrize("dangling", [False, True])
def test_a_file_link_is_refused_naming_it_and_nothing_outside_is_written(tree, dangling):
    root, outside = tree
    link = root / "issues" / "2026-12.md"
    link.symlink_to(outside / ("nowhere.txt" if dangling else "precious.txt"))

    with pytest.raises(LinkRefused) as caught:
        write_text(link, "overwritten\n", root=root)

    assert str(caught.value) == f"{link}: is a symbolic link; refusing to write through it"
    assert "\n" not in str(caught.value)
    assert _untouched(outside) and link.is_symlink()
    assert os.listdir(root / "issues") == ["2026-12.md"]  # no temp file left behind


def test_a_folder_link_inside_the_project_is_refused(tree):
    root, outside = tree
    shutil.rmtree(root / "issues")
    (root / "issues").symlink_to(outside, target_is_directory=True)

    with pytest.raises(LinkRefused) as caught:
        write_text(root / "issues" / "2026-12.md", "x", root=root)

    assert str(caught.value).startswith(f"{root / 'issues'}: is a symbolic link")
    assert _untouched(outside)


def test_a_deeper_folder_link_is_refused_too(tree):
    root, outside = tree
    (root / "build").mkdir()
    (root / "build" / "2026-12").symlink_to(outside, target_is_directory=True)

    with pytest.raises(LinkRefused):
        write_text(root / "build" / "2026-12" / "email.html", "x", root=root)
    assert _untouched(outside)


def test_outside_the_project_only_the_file_itself_is_checked(tree, tmp_path):
    root, outside = tree
    chosen = tmp_path / "chosen"
    chosen.symlink_to(outside, target_is_directory=True)  # a folder the user pointed --out at

    write_text(chosen / "export.csv", "a\n", root=root)
    assert (outside / "export.csv").read_text() == "a\n"
    (outside / "export.csv").unlink()
    (outside / "export.csv").symlink_to(outside / "precious.txt")
    with pytest.raises(LinkRefused):
        write_text(chosen / "export.csv", "b\n", root=root)
    assert (outside / "precious.txt").read_text(encoding="utf-8") == "keep me\n"


def test_the_mode_is_the_new_files_permissions(tree):
    root, _ = tree
    target = root / "private.csv"
    target.write_text("old")
    target.chmod(0o644)

    write_text(target, "secret", root=root, mode=0o600)

    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# --- the commands that write under issues/ ------------------------------------------------------


def test_new_refuses_a_planted_draft_link_with_one_line(project, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("keep me\n", encoding="utf-8")
    link = project.issues / "2027-03.md"
    link.symlink_to(tmp_path / "created-elsewhere.md")  # dangling: "does not exist" to exists()

    result = project.cli("new", "2027-03")

    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"newsletter: {link}: is a symbolic link; refusing to write through it"]
    assert not (tmp_path / "created-elsewhere.md").exists()


def test_new_refuses_an_issues_folder_that_is_a_link(project, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copytree(project.issues, outside, dirs_exist_ok=True)
    shutil.rmtree(project.issues)
    project.issues.symlink_to(outside, target_is_directory=True)

    result = project.cli("new", "2027-03")

    assert result.code == 2 and "is a symbolic link" in result.err
    assert not (outside / "2027-03.md").exists()


def test_pull_refuses_a_planted_snapshot_link(project, tmp_path):
    shutil.copy(SAMPLE_ISSUES / "2026-11.md", project.issues / "2026-11.md")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (project.issues / "2026-11.items.yaml").symlink_to(victim)

    result = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")

    assert result.code == 2
    assert f"{project.issues / '2026-11.items.yaml'}: is a symbolic link" in result.err
    assert victim.read_text(encoding="utf-8") == "keep me\n"


# --- personal data is owner-only ----------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_database_its_wal_and_shm_and_the_send_lock_are_created_0600(
        delivery_project):
    from newsletter.deliver.lock import SendLock
    from newsletter.store.connect import open_store

    old = os.umask(0o022)  # the usual umask, which left them 0644 before
    try:
        assert delivery_project.cli("send", "--now", "2026-11-22T10:00") == 0
        db = delivery_project.db
        conn = open_store(db)
        try:
            conn.execute("UPDATE subscribers SET name = name")  # a write: the WAL is in use
            files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
                     db.with_name(db.name + ".lock")]
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            conn.close()
        lock = SendLock(delivery_project.root / "other.lock")
        assert lock.acquire()
        lock.release()
        assert _mode(delivery_project.root / "other.lock") == 0o600
    finally:
        os.umask(old)


def test_the_send_lock_refuses_a_planted_link(tmp_path):
    from newsletter.deliver.lock import SendLock

    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "newsletter.db.lock").symlink_to(victim)

    with pytest.raises(OSError):
        SendLock(tmp_path / "newsletter.db.lock").acquire()
    assert victim.read_text() == "keep\n"
