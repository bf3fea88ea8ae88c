"""Cluster fault cases on PostgreSQL (issue 13): an unsubscribe through one host's web app is
honoured by another host's next claim, and the database restarting mid-send stops the
senders cleanly and the next run carries on. Skipped without PostgreSQL's binaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest_delivery import DeliveryProject
from pg_cluster import SECRET_USER, PgUnavailable, throwaway_cluster
from smtp_server import Script, ScriptedServer
from test_cluster_send import LATER, NOW, host, send, until
from web_server import running_app

from newsletter.audience.tokens import make_token
from newsletter.config import load_config
from newsletter.store.connect import open_store

SECRET = "s3cret"  # test_cluster_send.send's NEWSLETTER_SECRET: the links must verify on W


def started(project: DeliveryProject, name: str, url: str,
            server: ScriptedServer) -> subprocess.Popen:
    """test_cluster_send.send(wait=False), keeping the output: the summary is the point."""
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": SECRET,
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_HOST": name}
    return subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(project.config),
                             "send", "--now", NOW], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def ledger(url: str) -> dict[str, str]:
    with open_store(url) as db:
        return dict(db.all("SELECT s.email, d.state FROM deliveries d JOIN subscribers s "
                           "ON s.id = d.subscriber_id WHERE d.issue = '2026-11'"))


def test_unsubscribe_on_web_host_is_honoured_by_sender_host(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sender = host(tmp_path / "s", 100, 300, rate=10)  # 10 s of sending: time to unsubscribe
    web = host(tmp_path / "w", 0, 300)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", pg_url)
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    victim = sender.addresses[-1]  # the last in claim order: not yet claimed when it leaves
    config = load_config(web.config)
    path = f"{urlsplit(config.base_url).path.rstrip('/')}/unsubscribe/"
    token = make_token(SECRET, config.list_id, victim)
    script = Script()
    with ScriptedServer(script) as server, running_app(web.config) as origin:
        running = send(sender, "host-s", pg_url, server, "send", wait=False)
        # The relay's count, not the ledger's: a batch's outcomes are written with its next
        # claim, so `sent` in the database trails what went out.
        until(lambda: len(script.copies()) >= 3, "host-s never sent")
        page = httpx.get(f"{origin}{path}{token}")  # a scanner's GET changes nothing
        assert page.status_code == 200 and "One-Click" in page.text
        assert ledger(pg_url)[victim] == "pending"
        done = httpx.post(f"{origin}{path}{token}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        assert len(script.copies()) < len(sender.addresses) - 1  # it left mid-send
        assert running.wait(timeout=120) == 0
    states, copies = ledger(pg_url), script.copies()
    assert states[victim] == "suppressed" and copies[victim] == 0
    for address in sender.addresses[:-1]:
        assert (states[address], copies[address]) == ("sent", 1), address
    with open_store(pg_url) as db:
        assert db.one("SELECT status FROM subscribers WHERE email = ?",
                      (victim,))[0] == "unsubscribed"


def test_database_restart_mid_send_stops_senders_cleanly_and_next_run_carries_on(
        tmp_path: Path) -> None:
    try:
        with throwaway_cluster(durable=True) as cluster:  # ours: the session's is not restarted
            _restart_mid_send(tmp_path, cluster)
    except PgUnavailable as exc:
        pytest.skip(str(exc))


def claimed_by(url: str, name: str) -> int:
    with open_store(url) as db:
        return db.one("SELECT count(*) FROM deliveries WHERE claimed_by LIKE ?",
                      (f"{name}:%",))[0]


def in_flight(url: str) -> list[str]:
    with open_store(url) as db:
        return sorted(r[0] for r in db.all(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "WHERE d.state = 'sending'"))


def _restart_mid_send(tmp_path: Path, cluster) -> None:  # noqa: ANN001
    # A password in the URL's query (libpq takes one there): no message may show it.
    url = (cluster.url(cluster.new_database(owner=SECRET_USER), user=SECRET_USER)
           + f"?password={cluster.secret_password}")
    # 2 s leases; 200 rows at 5 a second a host: far from done when the database goes.
    a, b = (host(tmp_path / n, 200, 2, rate=5) for n in "ab")
    script = Script()
    with ScriptedServer(script) as server:
        runs = [started(p, n, url, server) for p, n in ((a, "host-a"), (b, "host-b"))]
        until(lambda: claimed_by(url, "host-a") and claimed_by(url, "host-b")
              and len(script.copies()) >= 6, "the hosts never both sent")
        cluster.stop()  # pg_ctl stop -m fast: every session is terminated
        try:
            outputs = [r.communicate(timeout=90) for r in runs]
        finally:
            cluster.start()
        codes, before, held = [r.returncode for r in runs], script.copies(), in_flight(url)
        for project in (a, b):  # the next runs at full speed
            text = project.config.read_text(encoding="utf-8")
            project.config.write_text(text.replace("rate_per_second = 5 ", "rate_per_second = 0 "),
                                      encoding="utf-8")
        # Both hosts' next run, an hour on: the leases ran out, so the rows in flight at the
        # restart are unknown (the relay may have them), the rest is sent.
        reruns = [send(p, n, url, server, "send", now=LATER)
                  for p, n in ((a, "host-a"), (b, "host-b"))]
    for out, err in outputs:
        assert "Traceback" not in out + err and cluster.secret_password not in out + err
        stop = [line for line in err.splitlines() if "stopped before the next batch" in line]
        assert stop and stop[0].startswith("newsletter: database postgresql://"), err
        lines = [line for line in (out + err).splitlines() if "database" in line]
        assert lines and all("\n" not in line for line in lines), out + err
    assert all(code not in (0, None) for code in codes), codes
    assert max(before.values()) == 1 and held  # each host held rows when the server went
    states, copies = ledger(url), script.copies()
    assert "sending" not in states.values() and "pending" not in states.values(), states
    assert max(copies.values()) == 1, "an address got two copies"
    unknown = sorted(e for e, s in states.items() if s == "unknown")
    assert unknown == held  # exactly the rows in flight: never resent on their own
    for address in a.addresses:
        if address not in held:
            assert (states[address], copies[address]) == ("sent", 1), address
    assert any("unknown" in r.stdout for r in reruns), [r.stdout for r in reruns]
    assert not any(cluster.secret_password in r.stdout + r.stderr for r in reruns)


def test_a_run_against_a_stopped_database_fails_in_one_line(tmp_path: Path) -> None:
    try:
        with throwaway_cluster() as cluster:
            url = cluster.url(cluster.new_database())
            cluster.stop()
            project = host(tmp_path / "a", 3, 300)
            with ScriptedServer(Script()) as server:
                run = send(project, "host-a", url, server, "send")
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "database" in run.stderr and "postgresql://" in run.stderr, run.stderr
