"""The web app's edges over real HTTP: only POST changes state, bodies are capped, the form
answers the same for every address at once, abuse limits, proof of ownership, redirects."""

from __future__ import annotations

import logging
import os
import select
import socket
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import NEWSLETTER_SCRIPT
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer, free_port
from test_web import ONE_CLICK, PREFIX, confirm_link, local, status_of, token_for
from web_server import deliver_queued, running_app

NOW = "2026-11-22T10:00"
TABLES = ("subscribers", "optin_requests", "mail_queue", "deliveries")


def snapshot(project: DeliveryProject) -> dict[str, list[tuple]]:
    with sqlite3.connect(project.db) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def profile(project: DeliveryProject, email: str) -> tuple:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT status, name, language FROM subscribers WHERE email = ?",
                            (email,)).fetchone()


def set_status(project: DeliveryProject, email: str, status: str) -> None:
    with sqlite3.connect(project.db) as conn:
        conn.execute("UPDATE subscribers SET status = ? WHERE email = ?", (status, email))


def web_settings(project: DeliveryProject, **settings: object) -> None:
    lines = ["", "[web]"]
    for key, value in settings.items():
        shown = "[" + ", ".join(f'"{v}"' for v in value) + "]" if isinstance(value, list) \
            else value
        lines.append(f"{key} = {shown}")
    with project.config.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# --- only a POST changes anything ------------------------------------------------------------

def test_head_options_and_get_change_nothing_on_any_route(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    reader = subscribed.addresses[0]
    assert subscribed.cli("send", "--now", NOW) == 0
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "new@example.org"})
        deliver_queued(subscribed.config)
        confirm = local(origin, confirm_link(smtp_script, "new@example.org"))
        before = snapshot(subscribed)
        urls = [f"{origin}{PREFIX}/{path}" for path in (
            f"unsubscribe/{token_for(reader)}", f"preferences/{token_for(reader)}",
            "subscribe", "", "feed.xml", "en/", "en/feed.xml", "healthz", "issues/2026-11")]
        urls.append(confirm)
        for url in urls:
            for method in ("HEAD", "OPTIONS", "GET"):
                # With the bodies a POST would carry: a HEAD with a body must not act either.
                reply = httpx.request(method, url, data={
                    "List-Unsubscribe": "One-Click", "email": "other@example.org",
                    "name": "Changed", "language": "ru"})
                assert reply.status_code in (200, 204), (method, url, reply.status_code)
            assert snapshot(subscribed) == before, url
        # The same routes do act on POST: the test above would have seen it.
        assert httpx.post(confirm).status_code == 200
    assert status_of(subscribed, "new@example.org") == "active"


@pytest.mark.parametrize("body", [
    {}, {"List-Unsubscribe": "Yes"}, {"One-Click": "List-Unsubscribe"},
    {"list-unsubscribe": "one-click"},
])
def test_a_post_without_the_one_click_body_only_shows_the_button(
        subscribed: DeliveryProject, body: dict) -> None:
    reader = subscribed.addresses[0]
    with running_app(subscribed.config) as origin:
        url = f"{origin}{PREFIX}/unsubscribe/{token_for(reader)}"
        page = httpx.post(url, data=body)
        assert page.status_code == 200 and '<form method="post"' in page.text
        assert status_of(subscribed, reader) == "active"
        assert httpx.post(url, data=ONE_CLICK).status_code == 200  # the page's own button
    assert status_of(subscribed, reader) == "unsubscribed"


# --- request bodies are capped ----------------------------------------------------------------

@contextmanager
def serve_process(project: DeliveryProject, smtp_url: str = "",
                  log: Path | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """`newsletter serve` itself, in its own process, so its memory and log can be read."""
    port = free_port()
    env = {**os.environ, "NEWSLETTER_SECRET": "test-secret", "NEWSLETTER_SMTP_URL": smtp_url}
    if not smtp_url:
        env.pop("NEWSLETTER_SMTP_URL")
    log = log or project.root / f"serve-{port}.log"
    output = log.open("wb")
    proc = subprocess.Popen([str(NEWSLETTER_SCRIPT), "--config", str(project.config), "serve",
                             "--port", str(port)], env=env, stdout=output, stderr=output)
    try:
        wait_for_health(proc, port, log)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        output.close()


def wait_for_health(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Until /healthz answers; a server that exits or never answers fails the test with its
    own log, not with a "connection refused" from the test's first request."""
    deadline = time.monotonic() + 40  # a loaded CI machine starts an interpreter slowly
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{PREFIX}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    pytest.fail(f"serve on port {port} did not answer /healthz (exit {proc.poll()}): {tail}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def stream_post(port: int, total: int, *, chunked: bool) -> tuple[bytes, int, float]:
    """POST `total` bytes to /subscribe as fast as the server takes them, stopping as soon as
    it answers. Returns (the reply's first bytes, bytes sent, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
        sock.sendall(f"POST {PREFIX}/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     f"application/x-www-form-urlencoded\r\n{length}\r\n\r\n".encode())
        piece, sent = b"email=" + b"a" * 65530, 0
        try:
            while sent < total and not select.select([sock], [], [], 0.5 if sent == 0 else 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed while bytes were in flight; its answer came before
        try:
            reply = sock.recv(200)
        except ConnectionResetError as exc:
            reply = repr(exc).encode()
    return reply, sent, time.monotonic() - started


def kernel_buffers() -> int:
    """The most a loopback TCP connection may hold in flight: receive + send buffer maxima."""
    return sum(int(Path(f"/proc/sys/net/ipv4/tcp_{kind}").read_text().split()[2])
               for kind in ("rmem", "wmem"))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_post_is_refused_with_413_without_reading_it(
        subscribed: DeliveryProject, chunked: bool) -> None:
    with serve_process(subscribed) as (proc, port):
        before = rss_kb(proc.pid)
        reply, sent, _seconds = stream_post(port, 50 * 1024 * 1024, chunked=chunked)
        grown = rss_kb(proc.pid) - before
        assert httpx.get(f"http://127.0.0.1:{port}{PREFIX}/healthz").status_code == 200
    assert reply.startswith(b"HTTP/1.1 413"), reply
    # It stopped reading long before 50 MB: what the client handed over beyond the server's
    # reads sits in the two sockets' kernel buffers (loopback autotunes them to a few MB,
    # more on some machines: 4.3 MB flaked a fixed 4 MB bound).
    assert sent < 1024 * 1024 + kernel_buffers(), sent
    assert grown < 5 * 1024, f"the server grew by {grown} kB"
    assert snapshot(subscribed)["optin_requests"] == []


def test_a_form_larger_than_a_form_needs_gets_413_from_the_app(
        subscribed: DeliveryProject) -> None:
    with running_app(subscribed.config) as origin:
        reply = httpx.post(f"{origin}{PREFIX}/subscribe",
                           data={"email": "big@example.org", "name": "x" * 100_000})
        multipart = httpx.post(f"{origin}{PREFIX}/subscribe", files={
            "email": (None, "big@example.org"), "f": ("f.txt", b"y" * 50_000)})
    assert reply.status_code == 413 and multipart.status_code == 413
    assert snapshot(subscribed)["optin_requests"] == []


# --- the same answer for every address, at once -----------------------------------------------

def test_known_unknown_bounced_and_complained_addresses_get_the_same_answer(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    active, bounced, complained, left = subscribed.addresses[:4]
    set_status(subscribed, bounced, "bounced")
    set_status(subscribed, complained, "complained")
    set_status(subscribed, left, "unsubscribed")
    addresses = [active, bounced, complained, left, "stranger@example.org"]
    with running_app(subscribed.config) as origin:
        replies = [httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": a})
                   for a in addresses]
    varying = ("date", "content-length")  # the length varies with the address's length
    shapes = {(r.status_code, r.content.replace(a.encode(), b"ADDRESS"),
               tuple(sorted((k, v) for k, v in r.headers.items() if k not in varying)))
              for r, a in zip(replies, addresses, strict=True)}
    assert len(shapes) == 1 and replies[0].status_code == 200
    deliver_queued(subscribed.config)
    # Bounced and complained addresses are never mailed; the others get a link.
    assert set(smtp_script.copies()) == {active, left, "stranger@example.org"}


@pytest.mark.parametrize("relay", ["hanging", "down"])
def test_a_hanging_or_dead_relay_changes_neither_the_answer_nor_its_time(
        subscribed: DeliveryProject, smtp_script: Script, monkeypatch: pytest.MonkeyPatch,
        relay: str) -> None:
    smtp_script.delay = 30  # the relay never answers the final dot (the client gives up at 2 s)
    with ScriptedServer(smtp_script) as server:
        url = server.url if relay == "hanging" else f"smtp://127.0.0.1:{free_port()}?timeout=2"
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", url)
        web_settings(subscribed, per_client_per_hour=100)
        known, times = subscribed.addresses[0], {"known": [], "unknown": []}
        with running_app(subscribed.config, worker=True) as origin, httpx.Client() as client:
            bodies = set()
            for n in range(6):
                for kind, email in (("known", known), ("unknown", f"new{n}@example.org")):
                    started = time.monotonic()
                    reply = client.post(f"{origin}{PREFIX}/subscribe", data={"email": email})
                    times[kind].append(time.monotonic() - started)
                    bodies.add((reply.status_code, reply.text.replace(email, "ADDRESS")))
    assert len(bodies) == 1 and bodies.pop()[0] == 200
    assert max(times["known"] + times["unknown"]) < 1.8, times  # never the relay's 2 s
    # A confirmation sent while the request waits would put the relay's 2 s timeout into one
    # kind of answer; 0.15 s is far under that and above what a loaded machine's scheduling
    # adds to a median of six (0.05 s flaked under CI load).
    assert abs(statistics.median(times["known"]) - statistics.median(times["unknown"])) < 0.15


# --- abuse limits ------------------------------------------------------------------------------

def test_the_per_address_cap_counts_the_mailbox_not_the_spelling(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    web_settings(subscribed, per_client_per_hour=1000)
    variants = [f"{'.'.join('victim')}+{n}@gmail.com" for n in range(20)] + \
        [f"Victim+x{n}@googlemail.com" for n in range(20)] + \
        ["v.i.c.t.i.m@GMAIL.com", "victim@gmail.com"] + \
        [f"boss+{n}@example.org" for n in range(13)]
    with running_app(subscribed.config) as origin, httpx.Client() as client:
        for address in variants:
            assert client.post(f"{origin}{PREFIX}/subscribe",
                               data={"email": address}).status_code == 200
    deliver_queued(subscribed.config)
    assert len(smtp_script.messages) == 2  # one for the Gmail inbox, one for boss@
    with sqlite3.connect(subscribed.db) as conn:  # stored as typed
        assert conn.execute("SELECT email FROM mail_queue ORDER BY id").fetchall() == [
            ("v.i.c.t.i.m+0@gmail.com",), ("boss+0@example.org",)]


def test_the_per_client_limit_and_its_log_line(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        caplog: pytest.LogCaptureFixture) -> None:
    web_settings(subscribed, per_client_per_hour=3)
    with running_app(subscribed.config) as origin, caplog.at_level(logging.WARNING):
        answers = {httpx.post(f"{origin}{PREFIX}/subscribe", data={
            "email": f"r{n}@example.org"}, headers={"X-Forwarded-For": f"203.0.113.{n}"}
        ).text.replace(f"r{n}@example.org", "A") for n in range(6)}
    assert len(answers) == 1  # over the limit, the page says the same
    assert deliver_queued(subscribed.config).sent == 3  # X-Forwarded-For from anyone: ignored
    assert caplog.text.count("over [web] per_client_per_hour") == 3


def test_a_trusted_proxy_names_the_client_and_the_global_limit_holds(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        caplog: pytest.LogCaptureFixture) -> None:
    web_settings(subscribed, per_client_per_hour=1, global_per_hour=4,
                 trusted_proxies=["127.0.0.1"])
    with running_app(subscribed.config) as origin, caplog.at_level(logging.WARNING):
        for n in range(6):  # six clients behind our proxy, one request each
            httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": f"r{n}@example.org"},
                       headers={"X-Forwarded-For": f"198.51.100.7, 203.0.113.{n}"})
    assert deliver_queued(subscribed.config).sent == 4
    assert caplog.text.count("over [web] global_per_hour") == 2
    assert "over [web] per_client_per_hour" not in caplog.text


# --- proof of ownership ------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["active", "unsubscribed", "pending"])
def test_a_strangers_form_changes_nobodys_data_until_the_owner_confirms(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        status: str) -> None:
    reader = subscribed.addresses[3]
    set_status(subscribed, reader, status)
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={
            "email": reader, "name": "Mallory", "language": "ru"})
        assert profile(subscribed, reader) == (status, "Reader 3", "en")
        deliver_queued(subscribed.config)
        link = local(origin, confirm_link(smtp_script, reader))
        page = httpx.get(link)  # the owner sees what they are asked to confirm
        assert "Mallory" in page.text and "Русский" in page.text
        assert profile(subscribed, reader) == (status, "Reader 3", "en")
        assert httpx.post(link).status_code == 200
    assert profile(subscribed, reader) == ("active", "Mallory", "ru")


def test_a_resubmitted_pending_address_keeps_each_links_own_data(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    web_settings(subscribed, confirm_per_address_hours=0)  # let both mails go out
    owner = "owner@example.org"
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={
            "email": owner, "name": "Olive Owner", "language": "fr"})
        deliver_queued(subscribed.config)
        first = local(origin, confirm_link(smtp_script, owner))
        httpx.post(f"{origin}{PREFIX}/subscribe", data={  # a stranger, later
            "email": owner, "name": "Win a prize! Visit http://evil.example", "language": "ru"})
        deliver_queued(subscribed.config)
        second = local(origin, confirm_link(smtp_script, owner))
        assert first != second and profile(subscribed, owner) == ("pending", "", "")
        assert httpx.post(first).status_code == 200
        assert profile(subscribed, owner) == ("active", "Olive Owner", "fr")
        assert httpx.post(first).status_code == 200  # twice: changes nothing more
    assert profile(subscribed, owner) == ("active", "Olive Owner", "fr")
    assert all("prize" not in m.as_string() for m in smtp_script.parsed(owner))


def test_a_confirm_link_made_before_a_hard_bounce_never_reactivates(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    email = "gone@example.org"
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": email})
        deliver_queued(subscribed.config)
        link = local(origin, confirm_link(smtp_script, email))
        set_status(subscribed, email, "bounced")  # the return path saw a hard bounce
        assert httpx.post(link).status_code == 400
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": email})
    assert status_of(subscribed, email) == "bounced"
    assert deliver_queued(subscribed.config).claimed == 0


def test_another_spelling_of_a_bounced_or_complained_inbox_is_never_mailed_or_activated(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    web_settings(subscribed, per_client_per_hour=1000)
    variant = "an.na.berg+news@gmail.com"
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": variant})
        deliver_queued(subscribed.config)
        link = local(origin, confirm_link(smtp_script, variant))  # mailed before the bounce
        assert subscribed.cli("subscribers", "add", "annaberg@googlemail.com") == 0
        set_status(subscribed, "annaberg@googlemail.com", "bounced")
        assert httpx.post(link).status_code == 400  # the inbox is dead: no activation
        for spelling in ("a.n.n.a.b.e.r.g@gmail.com", "AnnaBerg+x@googlemail.com"):
            httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": spelling})
        assert subscribed.cli("subscribers", "add", "boss@example.org") == 0
        set_status(subscribed, "boss@example.org", "complained")
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "Boss+again@example.org"})
    assert deliver_queued(subscribed.config).claimed == 0
    assert status_of(subscribed, variant) != "active"


# --- redirects and server limits ---------------------------------------------------------------

@pytest.mark.parametrize("path", [PREFIX, f"{PREFIX}/en", f"{PREFIX}/fr"])
def test_slash_redirects_point_at_base_url_not_the_host_header(
        subscribed: DeliveryProject, path: str) -> None:
    with running_app(subscribed.config) as origin:
        reply = httpx.get(f"{origin}{path}", headers={"Host": "evil.example"})
    assert reply.status_code == 308
    assert reply.headers["Location"] == f"https://ipbusiness.example.org{path}/"


def test_serve_limits_what_one_connection_can_hold() -> None:
    from newsletter.web.app import MAX_BODY_BYTES
    from newsletter.web.serving import WAITRESS_LIMITS, make_server

    server = make_server(lambda environ, start: [], "127.0.0.1", 0)
    try:
        adj = server.adj
        assert adj.max_request_body_size == MAX_BODY_BYTES <= 256 * 1024
        assert adj.channel_timeout <= 30 and adj.connection_limit == 200
        assert adj.max_request_header_size <= 16 * 1024 and adj.inbuf_overflow <= 64 * 1024
        assert adj.cleanup_interval <= 10 and WAITRESS_LIMITS["trusted_proxy"] is None
    finally:
        server.close()


def test_bad_web_settings_are_named_with_their_key(subscribed: DeliveryProject) -> None:
    from newsletter.config import load_config
    from newsletter.errors import ConfigError

    web_settings(subscribed, per_client_per_hour=0, global_per_hour="'many'",
                 trusted_proxies=["10.0.0.0/8", "proxy.example"])
    with pytest.raises(ConfigError) as caught:
        load_config(subscribed.config)
    message = str(caught.value)
    assert "'web.per_client_per_hour' must be a whole number of at least 1" in message
    assert "'web.global_per_hour'" in message
    assert "'web.trusted_proxies' has 'proxy.example'" in message and "10.0.0.0" not in message


def test_serve_stops_cleanly_on_sigterm(subscribed: DeliveryProject) -> None:
    with serve_process(subscribed) as (proc, _port):
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # the mail worker was stopped, not killed


def test_serve_delivers_the_confirmation_and_logs_a_refusal_where_the_operator_sees_it(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        tmp_path: Path) -> None:
    smtp_script.rcpt["gone@example.org"] = ["550 5.1.1 no such user"]
    log = tmp_path / "serve.log"
    with serve_process(subscribed, smtp_server.url, log) as (_proc, port):
        for email in ("gone@example.org", "here@example.org"):
            assert httpx.post(f"http://127.0.0.1:{port}{PREFIX}/subscribe",
                              data={"email": email}).status_code == 200
        deadline = time.monotonic() + 15
        while "here@example.org sent" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    text = log.read_text()
    assert "confirmation mail goes out through smtp://127.0.0.1" in text
    assert "confirmation mail to gone@example.org failed: 550 5.1.1 no such user" in text
    assert smtp_script.copies() == {"here@example.org": 1}
