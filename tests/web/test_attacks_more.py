"""Attacks from outside over real HTTP, second round: hostile sign-up addresses, one mailbox
under many spellings, many slow clients at once against `newsletter serve`, the headers of
every kind of answer, a used confirm link replayed later, a stranger's POST against a pending
request's consent record, and webhook posts without our whole signature or not JSON."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import confirm_link as newest_confirm_link
from smtp_server import Script, ScriptedServer
from test_web import ONE_CLICK, PREFIX, confirm_link, local, token_for
from test_web_abuse import NOW, serve_process, snapshot, web_settings
from test_webhooks import (
    ALL_ACTIVE,
    MAILGUN_KEY,
    mailgun_signed,
    post_json,
    sample,
    serving,
    statuses,
    webhook_ready,
)
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import make_manage_token

LIST_ID = "ip-for-business.ipbusiness.example.org"

# --- sign-up addresses -----------------------------------------------------------------------

HOSTILE = [
    '"a b"@example.org', '"a@b"@example.org', '"a\\"b"@example.org', '"a@b"@c.example.org',
    "a(comment)@example.org", "(c)a@example.org", "Eve <eve@example.org>", "<a@example.org>",
    "a@example.org.", "a@.example.org", "a@-example.org", "a@[127.0.0.1]", "a@localhost",
    "x" * 65 + "@example.org",  # RFC 5321 4.5.3.1.1: a local part is at most 64 octets
    "a@" + "b" * 64 + ".org",  # RFC 1035: a label is at most 63
    "a@" + ".".join(["b" * 63] * 4) + ".org",  # a domain is at most 255 (253 in text)
    "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".org",  # an address is at most 254
    "a\x00@example.org", "a\t@example.org", "a@exa\x7fmple.org",
    "a@example.org\r\nRCPT TO:<x@evil.example>", "a@example.org\nBcc: x@evil.example",
    "a@example.org\r\n.\r\nMAIL FROM:<x@evil.example>", "a@example.org,b@evil.example",
    "a@example.org b@evil.example", "a@example.org>", "ü@example.org",  # SMTPUTF8: refused
    "a@xn--.org", "a@xn--zz.org",  # not IDNA at all
    # atext only, but an RFC 2047 encoded word ("Bcc: evil@example.org"): the message builder
    # refuses it in a header, so the form must too (else a pending row nobody can mail)
    "a=?utf-8?b?QmNjOiBldmlsQGV4YW1wbGUub3Jn?=@example.org",
]


def test_hostile_addresses_are_refused_and_nothing_reaches_the_relay(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    web_settings(subscribed, per_client_per_hour=1000)
    with running_app(subscribed.config) as origin, httpx.Client() as client:
        for address in HOSTILE:
            reply = client.post(f"{origin}{PREFIX}/subscribe", data={"email": address})
            assert reply.status_code == 422, address
            assert "bcc" not in reply.headers and "location" not in reply.headers
    assert snapshot(subscribed)["optin_requests"] == []
    assert deliver_queued(subscribed.config).claimed == 0 and smtp_script.messages == []


# Each is the same mailbox: the domain in Unicode NFC, NFD, full-width, upper case or
# already in ASCII (IDNA 2008 with UTS #46 mapping gives one A-label for all of them).
SPELLINGS = ["leser@bücher.de", "leser@bu\u0308cher.de", "leser@ＢÜＣＨＥＲ.de",
             "Leser@BÜCHER.DE", "leser@xn--bcher-kva.de", "leser+x@xn--bcher-kva.de"]


def test_one_idn_mailbox_under_every_spelling_is_one_reader_and_one_mail(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    web_settings(subscribed, per_client_per_hour=1000)
    now = datetime.now(UTC)
    # 14 hours ago, every spelling at once; 7 hours ago (past confirm_per_address_hours) and
    # now, one spelling each. Each link mailed is confirmed.
    for hours, spellings in ((14, SPELLINGS), (7, SPELLINGS[1:2]), (0, SPELLINGS[3:4])):
        then = now - timedelta(hours=hours)
        with running_app(subscribed.config, clock=lambda t=then: t) as origin:
            for address in spellings:
                reply = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": address})
                assert reply.status_code == 200 and "xn--bcher-kva.de" in reply.text, address
            assert deliver_queued(subscribed.config).claimed >= 1  # the cap: one at a time
            link = local(origin, newest_confirm_link(smtp_script, "leser@xn--bcher-kva.de"))
            assert httpx.post(link).status_code == 200
    confirmations = [m for m in smtp_script.parsed("leser@xn--bcher-kva.de")
                     if "/confirm/" in m.get_body(("plain",)).get_content()]
    assert len(confirmations) == 3
    with sqlite3.connect(subscribed.db) as conn:  # one reader, under the first spelling
        assert conn.execute("SELECT email, status FROM subscribers WHERE email LIKE "
                            "'%bcher%'").fetchall() == [("leser@xn--bcher-kva.de", "active")]


# Valid dot-atom local parts of characters RFC 5322 allows (atext) that mean something
# elsewhere: quotes, braces, pipes, slashes, question marks.
ODD_BUT_VALID = ["o'hara{x}|y~z@example.org", "a.b!c#d$e%f&g*h/i=j?k^l_m`n@example.org"]


def test_an_odd_valid_address_is_the_one_recipient_and_the_whole_to_header(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    with running_app(subscribed.config) as origin:
        for address in ODD_BUT_VALID:
            assert httpx.post(f"{origin}{PREFIX}/subscribe",
                              data={"email": address}).status_code == 200
    assert deliver_queued(subscribed.config).sent == len(ODD_BUT_VALID)
    assert sorted(smtp_script.copies()) == sorted(a.lower() for a in ODD_BUT_VALID)
    for address in ODD_BUT_VALID:
        (message,) = smtp_script.parsed(address)
        assert [str(a) for a in message["To"].addresses] == [address]
        assert message["Bcc"] is None and message["Cc"] is None


# --- many slow clients at once ----------------------------------------------------------------

class Trickler:
    """count sockets from source, each sending a request a little at a time, a line of
    headers (or a few bytes of a body) a second, never ending it; a socket the server closes
    is opened again (the attack goes on). Beyond connection_limit the rest wait in the
    listen backlog."""

    START = {"headers": f"GET {PREFIX}/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
             "body": f"POST {PREFIX}/subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nemail="}
    MORE = {"headers": b"X-Slow: 1\r\n", "body": b"aaaa"}

    def __init__(self, port: int, count: int, source: str, part: str) -> None:
        self.port, self.source, self.part = port, source, part
        self.sockets = [self.open() for _ in range(count)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open(self) -> socket.socket:
        sock = socket.socket()
        sock.settimeout(2)
        sock.bind((self.source, 0))
        sock.connect(("127.0.0.1", self.port))
        sock.sendall(self.START[self.part].encode())
        return sock

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for n, sock in enumerate(self.sockets):
                try:
                    sock.sendall(self.MORE[self.part])
                except OSError:
                    sock.close()
                    with contextlib.suppress(OSError):
                        self.sockets[n] = self.open()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_reader_is_served_while_one_host_holds_every_connection_trickling(
        subscribed: DeliveryProject, part: str) -> None:
    with serve_process(subscribed) as (_proc, port):
        # connection_limit is 200: the rest wait in the backlog, each reopened when closed
        attack = Trickler(port, 400, "127.0.0.2", part)
        try:
            time.sleep(1.5)  # every connection is taken and trickling
            started = time.monotonic()
            reply = httpx.get(f"http://127.0.0.1:{port}{PREFIX}/subscribe", timeout=8)
            waited = time.monotonic() - started
        finally:
            attack.close()
        after = httpx.get(f"http://127.0.0.1:{port}{PREFIX}/healthz", timeout=8)
    assert reply.status_code == 200 and waited < 4, waited
    assert after.status_code == 200
    log = next(subscribed.root.glob("serve-*.log")).read_text()
    assert "all 200 connections in use: closing" in log and "(127.0.0.2 holds" in log


# --- the headers of every kind of page ---------------------------------------------------------

SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
            "cache-control": "no-store", "x-frame-options": "DENY"}


def test_every_kind_of_answer_carries_the_security_headers(
        subscribed: DeliveryProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_WEBHOOK_SECRET", "hooks-0123456789abcdef")
    reader = subscribed.addresses[0]
    assert subscribed.cli("send", "--now", NOW) == 0
    manage = make_manage_token("test-secret", LIST_ID, reader, datetime.now(UTC))
    with running_app(subscribed.config) as origin, httpx.Client() as client:
        base = f"{origin}{PREFIX}"
        answers = {
            "form": client.get(f"{base}/subscribe"),
            "accepted": client.post(f"{base}/subscribe", data={"email": "n@example.org"}),
            "refused": client.post(f"{base}/subscribe", data={"email": "bad"}),
            "too large": client.post(f"{base}/subscribe", data={"email": "x" * 20_000}),
            "unsubscribe": client.get(f"{base}/unsubscribe/{token_for(reader)}"),
            "preferences": client.get(f"{base}/preferences/{token_for(reader)}"),
            "bad token": client.get(f"{base}/preferences/garbage"),
            "manage": client.get(f"{base}/manage/{manage}"),
            "download": client.post(f"{base}/manage/{manage}/data"),
            "confirm": client.get(f"{base}/confirm/x.y"),
            "issue": client.get(f"{base}/issues/2026-11"),
            "feed": client.get(f"{base}/feed.xml"),
            "healthz": client.get(f"{base}/healthz"),
            "missing": client.get(f"{base}/nowhere"),
            "method": client.put(f"{base}/subscribe"),
            "slash": client.get(base),
            "counted link": client.get(f"{base}/r/abcdefghijkl"),
            "webhook": client.post(f"{base}/webhooks/hooks-0123456789abcdef/postmark",
                                   content="{", headers={"Content-Type": "application/json"}),
            "one-click": client.post(f"{base}/unsubscribe/{token_for(reader)}", data=ONE_CLICK),
        }
    for what, reply in answers.items():
        assert reply.status_code < 500, what
        shown = {k: reply.headers.get(k) for k in SECURITY}
        assert shown == SECURITY, (what, shown)
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"], what
        assert "set-cookie" not in reply.headers, what
    assert answers["download"].headers["content-type"].startswith("application/json")


# --- a used confirm link, replayed ----------------------------------------------------------------

def test_a_used_confirm_link_replayed_later_undoes_nothing_the_reader_changed(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    email = "replay@example.org"
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": email, "name": "First",
                                                         "language": "fr"})
        deliver_queued(subscribed.config)
        link = local(origin, confirm_link(smtp_script, email))
        assert httpx.post(link).status_code == 200
        deliver_queued(subscribed.config)  # the welcome
        mails = len(smtp_script.messages)
        httpx.post(f"{origin}{PREFIX}/preferences/{token_for(email)}",
                   data={"name": "Changed", "language": "es"})
        assert httpx.post(link).status_code == 200  # the same page as the first time
    deliver_queued(subscribed.config)
    with sqlite3.connect(subscribed.db) as conn:
        assert conn.execute("SELECT name, language, status FROM subscribers WHERE email = ?",
                            (email,)).fetchone() == ("Changed", "es", "active")
        assert conn.execute("SELECT count(*) FROM consent_events WHERE email = ? AND "
                            "action = 'subscribed'", (email,)).fetchone() == (1,)
    assert len(smtp_script.messages) == mails  # no second welcome


# --- the consent record of a pending request ------------------------------------------------------

def test_a_strangers_post_for_a_pending_address_leaves_that_requests_form_record_alone(
        subscribed: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script) -> None:
    email = "owner@example.org"
    with running_app(subscribed.config) as origin:
        httpx.post(f"{origin}{PREFIX}/subscribe?lang=fr", data={"email": email, "language": "fr"})
        # A stranger, from the Russian page, inside confirm_per_address_hours: no mail.
        httpx.post(f"{origin}{PREFIX}/subscribe?lang=ru", data={"email": email, "language": "ru"})
        assert deliver_queued(subscribed.config).sent == 1
        assert httpx.post(local(origin, confirm_link(smtp_script, email))).status_code == 200
    with sqlite3.connect(subscribed.db) as conn:
        (detail,) = conn.execute("SELECT detail FROM consent_events WHERE email = ? AND "
                                 "action = 'subscribed'", (email,)).fetchone()
    # What the owner saw and agreed to: the French form (the history shows its text).
    assert detail.startswith("form in fr, text version "), detail


# --- webhooks: signature shapes and media types ---------------------------------------------------

@pytest.fixture
def webhook_project(delivery_project: DeliveryProject,
                    monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    """test_webhooks' project: its readers, our Mailgun key, the SNS topic."""
    return webhook_ready(delivery_project, monkeypatch)


def _mailgun_variant(change: str) -> dict:
    payload = mailgun_signed("mailgun-permanent-fail.json")
    sig = payload["signature"]
    if change == "no signature":
        del payload["signature"]
    elif change == "signature is a string":
        payload["signature"] = sig["signature"]
    elif change == "no token":
        del sig["token"]
    elif change in ("one hex digit short", "one hex digit more", "empty"):
        sig["signature"] = {"one hex digit short": sig["signature"][:-1], "empty": "",
                            "one hex digit more": sig["signature"] + "0"}[change]
    elif change == "timestamp not a number":  # signed with our key: still refused, not a 500
        sig["timestamp"] = "1e9"
        sig["signature"] = hmac.new(MAILGUN_KEY.encode(), ("1e9" + sig["token"]).encode(),
                                    hashlib.sha256).hexdigest()
    return payload


@pytest.mark.parametrize("change, status", [
    ("no signature", 400), ("signature is a string", 400), ("no token", 400), ("empty", 400),
    ("one hex digit short", 403), ("one hex digit more", 403), ("timestamp not a number", 403)])
def test_a_mailgun_post_without_our_whole_signature_changes_nothing(
        webhook_project: DeliveryProject, change: str, status: int) -> None:
    with serving(webhook_project) as hooks:
        reply = post_json(f"{hooks}/mailgun", _mailgun_variant(change))
    assert reply.status_code == status and statuses(webhook_project) == ALL_ACTIVE


@pytest.mark.parametrize("media", ["", "text/html", "application/xml", "multipart/form-data",
                                   "application/json-patch+json"])
def test_a_webhook_body_that_is_not_json_by_its_media_type_is_refused(
        webhook_project: DeliveryProject, media: str) -> None:
    with serving(webhook_project) as hooks:
        reply = httpx.post(f"{hooks}/postmark", content=sample("postmark-bounce.json"),
                           headers={"Content-Type": media} if media else {}, timeout=30)
    assert reply.status_code == 415 and statuses(webhook_project) == ALL_ACTIVE
