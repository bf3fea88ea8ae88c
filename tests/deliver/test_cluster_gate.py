"""The list's rate and policy stop across `newsletter send` processes on three "hosts" (own
project directories and NEWSLETTER_HOST) against one PostgreSQL database and one recording
SMTP server: together they never go over `[delivery] rate_per_second`, and one host's policy
stop stops the others before their next claim. Skipped without PostgreSQL's binaries."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer
from test_cluster_send import NOW, host, sent_by, until
from test_shared_rate import most_in_one_second

from newsletter.deliver.workers import POLICY_STREAK
from newsletter.store.connect import open_store

HOSTS = ("host-a", "host-b", "host-c")
BLOCKED = "550 5.7.1 Service unavailable; client host blocked"


def start(project: DeliveryProject, name: str, url: str,
          server: ScriptedServer) -> subprocess.Popen[str]:
    """`newsletter send` on host `name`, its output kept (test_cluster_send.send drops it)."""
    env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s3cret",
           "NEWSLETTER_DATABASE_URL": url, "NEWSLETTER_HOST": name}
    env.pop("NEWSLETTER_CRASH_AT", None)
    return subprocess.Popen([sys.executable, "-m", "newsletter", "--config",
                             str(project.config), "send", "--now", NOW], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def arrivals(script: Script) -> list[float]:
    """When the server took each message (time.monotonic()), in the order it took them."""
    times: list[float] = []
    lock = threading.Lock()

    def note(_rcpt: str) -> None:
        with lock:
            times.append(time.monotonic())

    script.on_message = note
    return times


def test_three_hosts_together_keep_the_lists_rate(tmp_path: Path, pg_url: str) -> None:
    rate, count = 20, 100
    projects = [host(tmp_path / n, count, 300, rate=rate) for n in "abc"]
    script = Script(delay=0.005)
    times = arrivals(script)
    with ScriptedServer(script) as server:
        runs = [start(p, n, pg_url, server) for p, n in zip(projects, HOSTS, strict=True)]
        outputs = [r.communicate(timeout=120) for r in runs]
        assert [r.returncode for r in runs] == [0, 0, 0], outputs
    assert sorted(script.copies().values()) == [1] * count
    by_host = {n: sent_by(pg_url, n) for n in HOSTS}
    assert sum(by_host.values()) == count and min(by_host.values()) > 0, by_host
    busiest = most_in_one_second(times)
    # The first messages go while the other hosts still start (and compete for the CPU):
    # the rate is measured from the sixth message on.
    times.sort()
    achieved = (count - 6) / (times[-1] - times[5])
    print(f"rate {rate}/s over 3 hosts: achieved {achieved:.2f}/s from the sixth message "
          f"({(count - 1) / (times[-1] - times[0]):.2f}/s in all), busiest second {busiest}, "
          f"by host {by_host}")
    # Stamped at the sink: a message held up on a loaded machine arrives with the next ones,
    # so one second may hold up to a quarter second more of slots (three hosts each at the
    # full rate would still fail by far).
    assert busiest <= rate * 1.25 + 1, busiest
    # Shared: not three times the rate. Not far under it either, but a sender starved of the
    # CPU gives up the slots it wakes too late for (at 0.05 s a message on two cores shared
    # with other work, about a third of them), so the bound here is loose; issue 17's 5 % is
    # pinned in one process by test_shared_rate.
    assert rate * 0.6 <= achieved <= rate * 1.05, achieved


def rejected(url: str) -> int:
    with open_store(url) as db:
        return db.one("SELECT count(*) FROM deliveries WHERE last_reply LIKE ?",
                      (BLOCKED[:9] + "%",))[0]


def test_one_hosts_policy_stop_stops_the_others_before_their_next_claim(
        tmp_path: Path, pg_url: str) -> None:
    count = 300
    projects = [host(tmp_path / n, count, 300) for n in "abc"]
    script = Script(delay=0.03)  # about 30 messages a second per host: all three running
    with ScriptedServer(script) as server:
        runs = [start(p, n, pg_url, server) for p, n in zip(projects, HOSTS, strict=True)]
        until(lambda: all(sent_by(pg_url, n) for n in HOSTS), "not every host sent", 60)
        script.rcpt_default = BLOCKED  # the relay blocks the list, on every host at once
        outputs = [r.communicate(timeout=60) for r in runs]
        codes = [r.returncode for r in runs]
    with open_store(pg_url) as db:
        states = dict(db.all("SELECT state, count(*) FROM deliveries GROUP BY state"))
    total = rejected(pg_url)
    print(f"rejections {total}, states {states}, codes {codes}")
    assert codes == [1, 1, 1]
    assert "failed" not in states and states.get("sending", 0) == 0
    assert states["pending"] > 0  # stopped long before the list's end
    # 5 in a row on the list, then at most one more message on each other connection (one
    # connection per host): POLICY_STREAK + hosts * connections - 1 (shared_rate.SharedStop).
    assert POLICY_STREAK <= total <= POLICY_STREAK + len(HOSTS) * 1 - 1, outputs
    stderr = "\n".join(err for _out, err in outputs)
    own = stderr.count(f"stopped after {POLICY_STREAK} policy rejections in a row")
    told = [line for line in stderr.splitlines() if line.startswith("stopped: host host-")
            or ": stopped: host host-" in line]
    assert own >= 1 and own + len(told) == len(HOSTS), stderr
    assert all(f"had {POLICY_STREAK} policy rejections in a row (last: {BLOCKED}" in line
               for line in told), told
    assert all(out.rstrip().splitlines()[-1].startswith("sent ") for out, _err in outputs)
