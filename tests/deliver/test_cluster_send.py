"""Three `newsletter send` processes on three "hosts" (own project directories, own
NEWSLETTER_HOST) against one PostgreSQL database and one SMTP server; one is SIGKILLed
mid-send. No address gets two copies, every other address gets one, and the killed host's
in-flight rows stay `sending` while its lease holds, then become `unknown` on whichever
host runs next (listed by `newsletter status`). Skipped without PostgreSQL's binaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project
from smtp_server import Script, ScriptedServer

from newsletter.store.connect import open_store

NOW, LATER = "2026-11-22T10:00", "2026-11-22T11:00"  # LATER: the killed host's lease is out


def host(root: Path, count: int, lease: int, rate: float = 0,
         batch: int | None = None) -> DeliveryProject:
    project = make_delivery_project(root, count, connections=1, rate=rate, batch_size=batch)
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace("[delivery]\n", f"[delivery]\nlease_seconds = {lease}\n",
                                           1), encoding="utf-8")
    return project


def send(project: DeliveryProject, name: str, url: str, server: ScriptedServer,
         *args: str, now: str = NOW, wait: bool = True, capture: bool = False):  # noqa: ANN201
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s3cret",
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_HOST": name}
    env.pop("NEWSLETTER_CRASH_AT", None)
    argv = [sys.executable, "-m", "newsletter", "--config", str(project.config), *args]
    if args[0] == "send":
        argv += ["--now", now]
    if wait:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(argv, env=env, stdout=out, stderr=out, text=capture)


def sent_by(url: str, name: str) -> int:
    with open_store(url) as db:
        return db.one("SELECT count(*) FROM deliveries WHERE state = 'sent' AND claimed_by "
                      "LIKE ?", (f"{name}:%",))[0]


def until(condition, what: str, seconds: float = 150) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("batch", [1, 4])
def test_three_hosts_one_killed_no_address_twice(tmp_path: Path, pg_url: str,
                                                 batch: int) -> None:
    # host-a is slow (5 messages a second): rows are left for the others however long they
    # take to start on a busy machine (a start took 12 s here while others ran tests), and
    # enough of them that the first of the other two cannot claim them all (in batches of
    # the default size) before the second starts. host-a claims `batch` rows at a time.
    count = 300
    a = host(tmp_path / "a", count, 2, rate=5, batch=batch)
    b, c = (host(tmp_path / n, count, 300) for n in "bc")
    script = Script(delay=0.05)
    with ScriptedServer(script) as server:
        killed = send(a, "host-a", pg_url, server, "send", wait=False)
        until(lambda: sent_by(pg_url, "host-a") >= 3, "host-a never sent")
        others = [send(p, n, pg_url, server, "send", wait=False)
                  for p, n in ((b, "host-b"), (c, "host-c"))]
        until(lambda: sent_by(pg_url, "host-b") and sent_by(pg_url, "host-c"),
              "host-b and host-c never both sent")
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
        assert [p.wait(timeout=180) for p in others] == [0, 0]
        with open_store(pg_url) as db:
            held = [r[0] for r in db.all(
                "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE d.state = 'sending' AND d.claimed_by LIKE 'host-a:%'")]
        # One connection, whose batch's outcomes are written with its next claim: one batch
        # in flight (a row of it may be the next to go when the kill came: at least one).
        assert 1 <= len(held) <= batch
        # The next run on any host, once the lease ran out, recovers the row as unknown.
        rerun = send(b, "host-b", pg_url, server, "send", now=LATER)
        status = send(c, "host-c", pg_url, server, "status")
        with open_store(pg_url) as db:
            states = dict(db.all("SELECT s.email, d.state FROM deliveries d JOIN subscribers "
                                 "s ON s.id = d.subscriber_id WHERE d.issue = '2026-11'"))
    copies = script.copies()
    assert max(copies.values()) == 1  # no address twice
    assert "sending" not in states.values()
    unknown = sorted(e for e, s in states.items() if s == "unknown")
    assert unknown == sorted(held)
    for address in a.addresses:
        if address not in unknown:
            assert (states[address], copies[address]) == ("sent", 1), address
    assert rerun.returncode == 1 and "marked unknown" in rerun.stdout, rerun.stdout
    assert "sent 0," in rerun.stdout  # an unknown row is never resent on its own
    assert any(line.split()[:2] == ["unknown", held[0]] for line in status.stdout.splitlines())


def test_two_hosts_starting_together_freeze_once_and_both_send(tmp_path: Path,
                                                                pg_url: str) -> None:
    a, b = (host(tmp_path / n, 40, 300) for n in "ab")
    script = Script(delay=0.02)
    with ScriptedServer(script) as server:
        runs = [send(p, n, pg_url, server, "send", wait=False, capture=True)
                for p, n in ((a, "host-a"), (b, "host-b"))]
        outputs = [r.communicate(timeout=180)[0] for r in runs]
        assert [r.returncode for r in runs] == [0, 0], outputs
        with open_store(pg_url) as db:
            editions = db.one("SELECT count(*) FROM editions WHERE issue = '2026-11'")[0]
            states = dict(db.all("SELECT s.email, d.state FROM deliveries d JOIN subscribers "
                                 "s ON s.id = d.subscriber_id"))
    assert editions >= 1 and set(states.values()) == {"sent"} and len(states) == 40
    assert sorted(script.copies().values()) == [1] * 40
    # One host says it froze the issue for 40; the other, if it raced to the freeze, that it
    # sends from that freeze (never "frozen, 0 subscriber(s) to send to").
    assert sum("frozen, 40 subscriber(s) to send to" in out for out in outputs) == 1, outputs
    assert not any("frozen, 0 subscriber(s)" in out for out in outputs), outputs
