"""PostgresDb against a real throwaway cluster (tests/pg_cluster.py): placeholders, rows,
errors, transactions, the password, the pool."""

from __future__ import annotations

import threading

import psycopg
import pytest
from pg_cluster import SECRET_USER, PgCluster

from newsletter.store.db import IntegrityError, StoreError
from newsletter.store.pg_connect import one_line
from newsletter.store.postgres_db import (
    WRITE_LOCK,
    PostgresPool,
    connect_postgres,
    open_postgres,
    to_psycopg,
)


def test_placeholders_leave_literals_and_percent_signs_alone() -> None:
    assert to_psycopg("SELECT ? WHERE a = '?' AND b LIKE '50%'") == \
        "SELECT %s WHERE a = '?' AND b LIKE '50%%'"
    assert to_psycopg("SELECT :n, ':n', \"?\" -- ?\n") == "SELECT %(n)s, ':n', \"?\" -- ?\n"
    assert to_psycopg("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"
    assert to_psycopg("SELECT ?::text, :a") == "SELECT %s::text, %(a)s"


def test_placeholders_run_on_the_server(pg_url: str) -> None:
    with open_postgres(pg_url) as db:
        row = db.one("SELECT ? AS a, '?' AS q, '100%' AS p, ? || '%' AS b", ("x", "y"))
        assert tuple(row) == ("x", "?", "100%", "y%")
        assert db.one("SELECT '%' AS p")[0] == "%"  # no parameters: still one %
        assert db.one("SELECT :name AS n", {"name": "ann"})["n"] == "ann"
        assert db.one("SELECT ? LIKE ? ESCAPE '\\'", ("a%b", "a\\%b"))[0] is True


def test_rows_by_name_and_by_position(pg_url: str) -> None:
    with open_postgres(pg_url) as db:
        db.execute("CREATE TABLE t (id BIGINT, email TEXT, body BYTEA)")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "a@x.org", b"\x00\xff"),
                                                            (2, "b@x.org", b"")])
        row = db.one("SELECT id, email, body FROM t WHERE id = ?", (1,))
        assert row["id"] == row[0] == 1 and row["EMAIL"] == "a@x.org"
        assert row["body"] == b"\x00\xff" and row.keys() == ["id", "email", "body"]
        assert dict(row) == {"id": 1, "email": "a@x.org", "body": b"\x00\xff"}
        assert [email for _, email in db.execute("SELECT id, email FROM t ORDER BY id")] == \
            ["a@x.org", "b@x.org"]
        assert db.execute("UPDATE t SET email = ? WHERE id = ?", ("c@x.org", 2)).rowcount == 1
        assert db.execute("UPDATE t SET id = id").fetchone() is None  # as sqlite3 answers
        assert db.one("SELECT sum(id), count(*) FROM t") == (3, 2)  # ints, never Decimal
        db.execute("INSERT INTO t (id) VALUES (?)", (True,))  # SQLite has no booleans: 1
        assert db.one("SELECT max(id) FROM t WHERE email IS NULL")[0] == 1


def test_case_insensitive_unique_address(pg_url: str) -> None:
    with connect_postgres(pg_url) as db:
        add = ("INSERT INTO subscribers (email, created_at, updated_at) "
               "VALUES (?, 'now', 'now')")
        db.execute(add, ("Ann@Example.org",))
        with pytest.raises(IntegrityError) as caught:
            db.execute(add, ("ann@EXAMPLE.ORG",))
        assert "\n" not in str(caught.value) and str(caught.value).startswith("database: ")
        db.execute(add.replace("VALUES", "VALUES") + " ON CONFLICT (email) DO NOTHING",
                   ("ANN@example.org",))
        assert db.one("SELECT email FROM subscribers WHERE email = ?",
                      ("ann@example.ORG",))["email"] == "Ann@Example.org"
        assert db.one("SELECT count(*) FROM subscribers WHERE email LIKE ?",
                      ("%@example.org",))[0] == 1


def test_transaction_commits_or_rolls_back(pg_url: str) -> None:
    with open_postgres(pg_url) as db:
        db.execute("CREATE TABLE t (n INTEGER)")
        with pytest.raises(RuntimeError), db.transaction():
            db.execute("INSERT INTO t VALUES (1)")
            assert db.in_transaction
            raise RuntimeError("boom")
        assert not db.in_transaction and db.one("SELECT count(*) FROM t")[0] == 0
        with db.transaction(immediate=False):
            db.execute("INSERT INTO t VALUES (2)")
            with pytest.raises(StoreError, match="within a transaction"), db.transaction():
                pass
        assert db.one("SELECT count(*) FROM t")[0] == 1


def test_immediate_transactions_queue_like_sqlite_writers(pg_url: str) -> None:
    with open_postgres(pg_url) as first, open_postgres(pg_url) as second:
        with first.transaction():
            assert second.one("SELECT pg_try_advisory_xact_lock(?)", (WRITE_LOCK,))[0] is False
        with first.transaction(immediate=False):
            assert second.one("SELECT pg_try_advisory_xact_lock(?)", (WRITE_LOCK,))[0] is True


def test_a_dropped_connection_is_one_line_store_error(pg_cluster: PgCluster,
                                                      pg_url: str) -> None:
    with open_postgres(pg_url) as db, open_postgres(pg_url) as killer:
        pid = db.one("SELECT pg_backend_pid()")[0]
        killer.execute("SELECT pg_terminate_backend(?)", (pid,))
        with pytest.raises(StoreError) as caught:
            db.execute("SELECT 1")
        message = str(caught.value)
        assert message.startswith("database: ") and "\n" not in message


def test_no_server_is_one_line_store_error_naming_the_host() -> None:
    from pg_cluster import _free_port

    url = f"postgresql://nobody@127.0.0.1:{_free_port()}/none?connect_timeout=3"
    with pytest.raises(StoreError) as caught:
        open_postgres(url, password="hunter2-secret")
    assert "\n" not in str(caught.value) and "hunter2" not in str(caught.value)
    assert caught.value.where is not None and caught.value.where.startswith(
        "postgresql://nobody@127.0.0.1:")


def test_password_from_the_environment(pg_cluster: PgCluster,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.url(pg_cluster.new_database(owner=SECRET_USER), user=SECRET_USER)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    monkeypatch.setenv("NEWSLETTER_DATABASE_PASSWORD", "wrong-" + pg_cluster.secret_password)
    with pytest.raises(StoreError) as caught:
        open_postgres(url)
    assert "password authentication failed" in str(caught.value)
    assert pg_cluster.secret_password not in str(caught.value)
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("NEWSLETTER_DATABASE_PASSWORD", pg_cluster.secret_password)
    with connect_postgres(url) as db:  # not a superuser: citext is a trusted extension
        assert db.one("SELECT current_user")[0] == SECRET_USER
        assert db.where == url and pg_cluster.secret_password not in db.where


def test_no_password_at_all_says_where_one_goes(pg_cluster: PgCluster,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.url(pg_cluster.new_database(owner=SECRET_USER), user=SECRET_USER)
    for name in ("PGPASSWORD", "NEWSLETTER_DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(StoreError) as caught:
        open_postgres(url)
    message = str(caught.value)
    assert "no password supplied" in message and "NEWSLETTER_DATABASE_PASSWORD" in message
    assert "\n" not in message


def test_libpqs_advice_is_kept_on_the_one_line_and_row_data_is_not() -> None:
    advice = psycopg.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: root certificate file '
        '"/root/.postgresql/root.crt" does not exist\nEither provide the file or change '
        "sslmode to disable server certificate verification.\n")
    assert one_line(advice, None) == (
        'connection to server at "127.0.0.1", port 5432 failed: root certificate file '
        '"/root/.postgresql/root.crt" does not exist; Either provide the file or change '
        "sslmode to disable server certificate verification.")
    clash = psycopg.errors.UniqueViolation(
        'duplicate key value violates unique constraint "k"\nDETAIL:  Key (email)=(a@b.org) '
        "already exists.\nHINT:  pick another")
    assert one_line(clash, None) == ('duplicate key value violates unique constraint "k"; '
                                      "HINT:  pick another")
    assert one_line(psycopg.OperationalError("bad s3cret here"), "s3cret") == "bad *** here"


def test_the_pool_lends_connections_and_takes_them_back(pg_url: str) -> None:
    pool = PostgresPool(pg_url, size=2)
    try:
        with pool.db() as db, pytest.raises(StoreError), db.transaction():
            db.execute("INSERT INTO welcomed (key_hash, at) VALUES ('k', 'now')")
            db.execute("SELECT no_such_column FROM welcomed")
        seen = []

        def borrow() -> None:
            with pool.db() as db:
                seen.append(db.one("SELECT count(*) FROM welcomed")[0])

        threads = [threading.Thread(target=borrow) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [0] * 6
    finally:
        pool.close()


def test_a_stopped_server_is_one_line_store_error(pg_cluster: PgCluster, pg_url: str) -> None:
    db = open_postgres(pg_url)
    pg_cluster.stop()
    try:
        with pytest.raises(StoreError) as caught:
            db.execute("SELECT 1")
        assert "\n" not in str(caught.value)
        with pytest.raises(StoreError) as caught:
            open_postgres(pg_url)
        assert "\n" not in str(caught.value) and "Connection refused" in str(caught.value)
    finally:
        db.close()
        pg_cluster.start()
    with open_postgres(pg_url) as again:  # the next run carries on
        assert again.one("SELECT 1")[0] == 1


def test_trace_sees_each_statement_as_the_store_wrote_it(pg_url: str) -> None:
    seen: list[str] = []
    with open_postgres(pg_url) as db:
        db.trace(seen.append)
        db.execute("SELECT ?", (1,))
        db.trace(None)
        db.execute("SELECT 2")
    assert seen == ["SELECT ?"]
