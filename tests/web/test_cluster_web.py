"""`newsletter serve` on two hosts against one PostgreSQL database (issue 13): both mail
workers drain the one confirmation queue, and every confirmation reaches the relay once; a
serve host keeps answering across a database restart. Skipped without PostgreSQL's binaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pg_cluster import PgUnavailable, throwaway_cluster
from smtp_server import Script, ScriptedServer, free_port
from test_cluster_send import host, until
from test_pg_handles import server_connections
from web_server import running_app

from newsletter.audience.tokens import make_token
from newsletter.config import WebSettings, load_config
from newsletter.model import normalise_mailbox
from newsletter.store import optin as store_optin
from newsletter.store.connect import open_store
from newsletter.store.mailqueue import mail_queue_counts


def serve(project: Path, name: str, url: str, server: ScriptedServer,
          port: int) -> subprocess.Popen:
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s3cret",
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_HOST": name}
    return subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(project),
                             "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def sent(url: str) -> int:
    with open_store(url) as db:
        return mail_queue_counts(db).get("sent", 0)


def up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/newsletter/healthz",  # base_url's path
                         timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_serve_hosts_drain_one_queue_each_confirmation_once(tmp_path: Path,
                                                                pg_url: str) -> None:
    count = 60
    addresses = [f"signup{n:03d}@example.com" for n in range(count)]
    now = datetime.now(UTC)
    with open_store(pg_url) as db:
        for n, address in enumerate(addresses):  # as the subscribe form records them
            request = store_optin.SubscribeRequest(f"id-{n}", address,
                                                   normalise_mailbox(address), "", "en",
                                                   f"192.0.2.{n}")
            assert store_optin.record_subscribe_request(db, request, WebSettings(),
                                                        now) == "queued"
    script = Script(delay=0.05)  # 3 s of relay time: both hosts' workers find rows left
    ports = [free_port(), free_port()]
    with ScriptedServer(script) as server:
        hosts = [serve(host(tmp_path / n, 0, 300).config, f"web-{n}", pg_url, server, port)
                 for n, port in zip("ab", ports, strict=True)]
        try:
            until(lambda: all(up(p) for p in ports) or any(h.poll() is not None for h in hosts),
                  "a serve host never answered", 60)
            until(lambda: sent(pg_url) == count, "the queue was never drained", 120)
            time.sleep(1)  # a second claim of a row, were there one, would arrive now
            for port in ports:  # pages and the mail worker share the process's pool
                assert httpx.get(f"http://127.0.0.1:{port}/newsletter/unsubscribe/x",
                                 timeout=10).status_code == 400  # the invalid-link page
            pooled = server_connections(pg_url)
        finally:
            for process in hosts:
                process.send_signal(signal.SIGTERM)
            outputs = [process.communicate(timeout=60) for process in hosts]
    assert [p.returncode for p in hosts] == [0, 0], outputs
    assert sorted(script.copies().items()) == [(a, 1) for a in addresses]
    assert 2 <= pooled <= 2 * (4 + 2)  # kept open between uses; at most threads + 2 a host
    with open_store(pg_url) as db:
        assert mail_queue_counts(db) == {"sent": count}
        by_host = dict(db.all("SELECT split_part(claimed_by, ':', 1), count(*) FROM "
                              "mail_queue GROUP BY 1"))
    assert set(by_host) <= {"web-a", "web-b"} and sum(by_host.values()) == count


def test_serve_answers_again_once_the_database_restarted(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with throwaway_cluster() as cluster:  # ours: the session's cluster is not restarted
            url = cluster.url(cluster.new_database())
            monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
            monkeypatch.setenv("NEWSLETTER_SECRET", "s3cret")
            project = host(tmp_path / "w", 0, 300)
            config = load_config(project.config)
            with open_store(url) as db:
                db.execute("INSERT INTO subscribers (email, status, created_at, updated_at) "
                           "VALUES ('ann@example.com', 'active', 'now', 'now')")
            page = (f"{urlsplit(config.base_url).path}/unsubscribe/"
                    + make_token("s3cret", config.list_id, "ann@example.com"))
            with running_app(project.config) as origin:
                assert "ann@example.com" in httpx.get(origin + page, timeout=30).text
                cluster.stop()
                cluster.start()
                # The pooled connection the restart broke is replaced, not handed out.
                after_restart = httpx.get(origin + page, timeout=30)
                cluster.stop()
                started = time.monotonic()
                down = httpx.get(origin + page, timeout=30)  # the pool's wait, then an error
                waited = time.monotonic() - started
                cluster.start()
                again = httpx.get(origin + page, timeout=30)
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    assert after_restart.status_code == 200 and "ann@example.com" in after_restart.text
    assert down.status_code == 503 and "Traceback" not in down.text and waited < 25
    assert down.headers["Retry-After"] == "30"
    assert again.status_code == 200 and "ann@example.com" in again.text
