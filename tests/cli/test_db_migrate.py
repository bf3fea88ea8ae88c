"""`newsletter db migrate-to URL` end to end, as an operator runs it: a project sends an issue
on SQLite through a recording SMTP server, a reader unsubscribes, another bounces; the copy
moves it all to PostgreSQL; `send` there sends nothing twice and `status` and `report` say
what they said on SQLite. The refusals are one line each, never a traceback or a password.
Real PostgreSQL (pg_cluster) and `newsletter` child processes; skipped without PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest_delivery import REPO, DeliveryProject, make_delivery_project
from pg_cluster import SECRET_USER, PgCluster, PgUnavailable, _free_port, throwaway_cluster
from smtp_server import Script, ScriptedServer

from newsletter.store.connect import open_store

# The source is a SQLite file by definition: under `-p pg_engine` every file would be the
# PostgreSQL database itself.
pytestmark = pytest.mark.sqlite_only

NOW, LATER = "2026-11-22T10:00", "2026-11-22T11:00"  # LATER: the deferred address is due


def run(project: DeliveryProject, *args: str, url: str = "", smtp: str = "",
        **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "NEWSLETTER_SECRET": "s3cret", **env}
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_SMTP_URL", "NEWSLETTER_CRASH_AT",
                 "NEWSLETTER_DATABASE_PASSWORD", "PGPASSWORD"):
        if name not in env:
            environ.pop(name, None)
    if url:
        environ["NEWSLETTER_DATABASE_URL"] = url
    if smtp:
        environ["NEWSLETTER_SMTP_URL"] = smtp
    argv = [sys.executable, "-m", "newsletter", "--config", str(project.config), *args]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=180,
                          cwd=project.root)


def bounce_mail(project: DeliveryProject, address: str) -> Path:
    """A Gmail DSN (5.1.1, no such user) for `address`, in a folder `bounces` reads."""
    folder = project.root / "bounced"
    folder.mkdir()
    dsn = (REPO / "tests/fixtures/bounces/gmail_no_such_user.eml").read_text(encoding="utf-8")
    (folder / "1.eml").write_text(dsn.replace("dave.ng@example.com", address), encoding="utf-8")
    return folder


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_after_the_move_send_sends_nothing_twice_and_status_and_report_agree(
        tmp_path: Path, pg_url: str) -> None:
    project = make_delivery_project(tmp_path / "nl", 12)
    late, refused, leaving, bounced = project.addresses[3:7]
    script = Script(rcpt={late: ["451 4.3.0 try again later"],
                          refused: ["550 5.1.1 no such user"]})
    with ScriptedServer(script) as server:
        assert run(project, "send", "--now", NOW, smtp=server.url).returncode == 0
        assert run(project, "subscribers", "remove", leaving).returncode == 0
        assert run(project, "bounces", str(bounce_mail(project, bounced))).returncode == 0
        on_sqlite = [run(project, *a).stdout for a in (("status",), ("report", "2026-11"))]
        moved = run(project, "db", "migrate-to", pg_url)
        assert moved.returncode == 0, moved.stderr
        on_pg = [run(project, *a, url=pg_url).stdout for a in (("status",), ("report", "2026-11"))]
        before = sum(script.copies().values())
        again = run(project, "send", "--now", LATER, url=pg_url, smtp=server.url)
    assert again.returncode == 0, again.stderr
    # The same figures; the last line of status names the database each read.
    assert on_sqlite[0].splitlines()[-1] == f"database: {project.db} (SQLite)"
    assert on_pg[0].splitlines()[-1] == f"database: {pg_url} (PostgreSQL)"
    assert [on_pg[0].splitlines()[:-1], on_pg[1]] == [on_sqlite[0].splitlines()[:-1], on_sqlite[1]]
    assert "deferred 1" in on_sqlite[0] and "failed 1" in on_sqlite[0]
    assert before == 10  # every address but the deferred and the refused one
    # On PostgreSQL only the deferred address was due; everyone else had theirs already.
    assert script.copies() == {a: 1 for a in project.addresses if a != refused}
    assert "sent 1," in again.stdout
    table = {line.split()[0]: line.split()[1:] for line in moved.stdout.splitlines()}
    assert table["subscribers"][:2] == ["12", "12"] and table["deliveries"][:2] == ["12", "12"]
    assert table["bounce_events"][:2] == ["1", "1"] and table["editions"][0] != "0"
    assert "every count matches" in moved.stdout
    assert pg_url in moved.stdout


def test_a_target_that_holds_data_is_refused(tmp_path: Path, pg_url: str) -> None:
    project = make_delivery_project(tmp_path / "nl", 3)
    assert run(project, "subscribers", "import", "subscribers/sample.csv").returncode == 0
    assert run(project, "db", "migrate-to", pg_url).returncode == 0
    again = run(project, "db", "migrate-to", pg_url)
    assert one_line_error(again) == (f"newsletter: database: {pg_url} already has 3 "
                                     "subscribers; migrate-to copies into an empty database")
    assert again.stdout == ""


def test_a_wrong_password_is_a_line_without_the_password(tmp_path: Path,
                                                         pg_cluster: PgCluster) -> None:
    project = make_delivery_project(tmp_path / "nl", 3)
    assert run(project, "subscribers", "import", "subscribers/sample.csv").returncode == 0
    url = pg_cluster.url(pg_cluster.new_database(owner=SECRET_USER), user=SECRET_USER)
    wrong = run(project, "db", "migrate-to", url, NEWSLETTER_DATABASE_PASSWORD="Wr0ng-pass")
    line = one_line_error(wrong)
    assert "password authentication failed" in line and "Wr0ng-pass" not in line
    inline = url.replace(f"{SECRET_USER}@", f"{SECRET_USER}:In1ine-pass@")
    line = one_line_error(run(project, "db", "migrate-to", inline))
    assert "In1ine-pass" not in line and "password authentication failed" in line
    right = run(project, "db", "migrate-to", url,
                NEWSLETTER_DATABASE_PASSWORD=pg_cluster.secret_password)
    assert right.returncode == 0, right.stderr
    assert pg_cluster.secret_password not in right.stdout + right.stderr


def test_bad_urls_a_missing_source_and_no_server_are_one_line_errors(
        tmp_path: Path, pg_url: str) -> None:
    project = make_delivery_project(tmp_path / "nl", 3)
    missing = one_line_error(run(project, "db", "migrate-to", pg_url))
    assert "nothing to copy" in missing and str(project.db) in missing
    assert run(project, "subscribers", "import", "subscribers/sample.csv").returncode == 0
    for url in ("mysql://u@h/db", "sqlite:///other.db"):
        assert "copies into PostgreSQL" in one_line_error(run(project, "db", "migrate-to", url))
    assert not (project.root / "other.db").exists()
    nobody = f"postgresql://u@127.0.0.1:{_free_port()}/db?connect_timeout=3"
    assert "connection" in one_line_error(run(project, "db", "migrate-to", nobody)).lower()
    garbled = one_line_error(run(project, "db", "migrate-to", "postgresql://u@h:port/db"))
    assert garbled.startswith("newsletter: ")
    pg = one_line_error(run(project, "db", "migrate-to", pg_url, url=pg_url))
    assert "already PostgreSQL" in pg


def test_while_a_send_holds_the_lock_the_copy_is_refused(tmp_path: Path, pg_url: str) -> None:
    project = make_delivery_project(tmp_path / "nl", 3)
    assert run(project, "subscribers", "import", "subscribers/sample.csv").returncode == 0
    lock = project.db.with_name(project.db.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a running `newsletter send` holds
        line = one_line_error(run(project, "db", "migrate-to", pg_url))
    finally:
        os.close(fd)
    assert "a send is running" in line
    assert run(project, "db", "migrate-to", pg_url).returncode == 0


def test_the_server_stopped_mid_copy_leaves_the_target_empty_and_a_rerun_copies_it_all(
        tmp_path: Path) -> None:
    """The copy is one transaction: a server that goes away while it runs (here: stopped while
    the copy waits to write a table the test holds locked, the subscribers copied already)
    leaves no half-copied list behind, the command says so in one line, and the same command
    run again copies everything."""
    project = make_delivery_project(tmp_path / "nl", 12)
    with ScriptedServer(Script()) as server:
        assert run(project, "send", "--now", NOW, smtp=server.url).returncode == 0
    try:
        with throwaway_cluster() as cluster:
            url = cluster.url(cluster.new_database())
            open_store(url).close()  # the schema, so the test can lock a table of it
            holder = psycopg.connect(url)  # its transaction holds the lock until the stop
            # SHARE: the copy may count the rows (it does so first) but not write any
            holder.execute("LOCK TABLE deliveries IN SHARE MODE")
            copy = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "--config", str(project.config), "db",
                 "migrate-to", url], cwd=project.root, text=True, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env={**os.environ, "NEWSLETTER_SECRET": "s3cret"})
            wait_for_lock_wait(url)
            cluster.run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
            _, err = copy.communicate(timeout=60)
            holder.close()
            assert copy.returncode == 1 and "Traceback" not in err, err
            assert len(err.strip().splitlines()) == 1 and err.startswith("newsletter: "), err
            assert "nothing was copied: run migrate-to again" in err
            cluster.start()
            with open_store(url) as db:
                assert db.one("SELECT count(*) FROM subscribers")[0] == 0
            again = run(project, "db", "migrate-to", url)
            assert again.returncode == 0, again.stderr
            assert "every count matches" in again.stdout
            with open_store(url) as db:
                assert db.one("SELECT count(*) FROM subscribers")[0] == 12
                assert db.one("SELECT count(*) FROM deliveries")[0] == 12
    except PgUnavailable as exc:
        pytest.skip(str(exc))


def wait_for_lock_wait(url: str) -> None:
    """Until the copy's COPY into deliveries waits on the lock (the subscribers are in)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query ILIKE 'COPY%deliveries%'").fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the copy never reached the locked table")
