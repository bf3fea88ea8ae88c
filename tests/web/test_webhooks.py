"""Provider webhooks over real HTTP on 127.0.0.1, fed the providers' documented samples.

SES arrives through SNS: the tests sign the documented messages with a key made here and serve
its certificate from a real local HTTPS server (a trustme CA), through the app's injectable
certificate fetcher; the production fetcher is shown to refuse that same local URL.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trustme
from conftest_delivery import DeliveryProject
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from newsletter.audience import sns
from newsletter.audience.mailgun_payload import mailgun_report
from newsletter.audience.postmark_payload import postmark_report
from newsletter.audience.ses_payload import report_from_ses_json, ses_report
from newsletter.config import load_config
from newsletter.model import Subscriber
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.web.app import create_app
from newsletter.web.serving import make_server
from newsletter.web.webhooks import register_webhooks

SAMPLES = Path(__file__).parent.parent / "fixtures" / "webhooks"
SECRET = "hooks-0123456789abcdef"
PREFIX = "/newsletter"  # the path of base_url in the sample newsletter.toml
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"  # the SNS documentation's sample topic
MAILGUN_KEY = "key-test-signing-0123456789"
READERS = ("jane@example.com", "mary@example.com", "richard@example.com", "john@example.com",
           "alice@example.com")


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def sample_json(name: str) -> dict:
    return json.loads(sample(name))


# --- a signing certificate, served over real local HTTPS ----------------------------------------

class CertServer:
    """HTTPS on 127.0.0.1 (trustme CA) serving PEM bodies; counts every request it gets."""

    def __init__(self, ca: trustme.CA) -> None:
        self.bodies: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                body = server.bodies.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, body: bytes) -> str:
        self.bodies[path] = body
        return self.origin + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def signing_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and its self-signed certificate (PEM), standing in for SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def cert_server(signing_key: tuple) -> Iterator[CertServer]:
    ca = trustme.CA()
    server = CertServer(ca)
    server.ca = ca
    server.cert_url = server.url("/SimpleNotificationService-test.pem", signing_key[1])
    try:
        yield server
    finally:
        server.close()


def local_fetcher(server: CertServer) -> sns.CertificateFetcher:
    """The production fetcher with one change: the URL check admits the local server."""
    with server.ca.cert_pem.tempfile() as ca_file:
        context = ssl.create_default_context(cafile=ca_file)
    return sns.CertificateFetcher(allowed=lambda url: url.startswith(server.origin + "/"),
                                  verify=context, timeout=30)  # a loaded test machine


def string_to_sign(fields: dict) -> bytes:
    """Written from the SNS guide ("Verifying the signatures of Amazon SNS messages"), apart
    from the code under test: name and value lines, in byte order, of the documented keys."""
    keys = {"Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]}
    names = keys.get(fields["Type"], ["Message", "MessageId", "SubscribeURL", "Timestamp",
                                      "Token", "TopicArn", "Type"])
    return "".join(f"{n}\n{fields[n]}\n" for n in sorted(names) if n in fields).encode()


def signed(fields: dict, key: rsa.RSAPrivateKey, cert_url: str, version: str = "1") -> dict:
    fields = dict(fields, SigningCertURL=cert_url, SignatureVersion=version)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(fields), padding.PKCS1v15(), digest)
    return dict(fields, Signature=base64.b64encode(signature).decode())


def ses_over_sns(ses_sample: str, key: rsa.RSAPrivateKey, cert_url: str, *,
                 version: str = "1") -> dict:
    """The documented SNS Notification carrying a documented SES notification as Message."""
    envelope = sample_json("sns-notification.json")
    envelope["Message"] = ses_sample
    return signed(envelope, key, cert_url, version)


# --- the app on waitress, with serve's limits ----------------------------------------------------

@pytest.fixture
def project(delivery_project: DeliveryProject, monkeypatch: pytest.MonkeyPatch
            ) -> DeliveryProject:
    return webhook_ready(delivery_project, monkeypatch)


def webhook_ready(delivery_project: DeliveryProject, monkeypatch: pytest.MonkeyPatch
                  ) -> DeliveryProject:
    """The project with its readers, our Mailgun key and the SNS topic (other files use it)."""
    monkeypatch.delenv("NEWSLETTER_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("NEWSLETTER_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    monkeypatch.delenv("NEWSLETTER_POSTMARK_AUTH", raising=False)
    with delivery_project.config.open("a", encoding="utf-8") as f:
        f.write(f'\n[webhooks]\nsns_topics = ["{TOPIC}"]\n')
    conn = open_store(delivery_project.db)
    store_subscribers.upsert_subscribers(conn, [Subscriber(email=a) for a in READERS])
    conn.close()
    return delivery_project


@contextmanager
def serving(project: DeliveryProject, **hook_options: object) -> Iterator[str]:
    """Yields the base URL of the webhooks, e.g. http://127.0.0.1:4123/newsletter/webhooks/S."""
    config = load_config(project.config)
    app = create_app(config)
    register_webhooks(app, config, **{"secret": SECRET, **hook_options})
    server = make_server(app, "127.0.0.1", 0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}{PREFIX}/webhooks/{SECRET}"
    finally:
        try:
            server.trigger.pull_trigger(lambda: [c.close() for c in list(server._map.values())])
        except OSError:  # the loop already closed its trigger (it ended): close what is left
            for channel in list(server._map.values()):
                channel.close()
        thread.join(timeout=15)
        server.task_dispatcher.shutdown()


def status_of(project: DeliveryProject, email: str) -> str:
    conn = sqlite3.connect(project.db)
    try:
        row = conn.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else ""


def statuses(project: DeliveryProject) -> dict[str, str]:
    return {a: status_of(project, a) for a in READERS}


def events(project: DeliveryProject) -> int:
    return len(event_rows(project))


def event_rows(project: DeliveryProject) -> list[tuple[str, str]]:
    conn = sqlite3.connect(project.db)
    try:
        return conn.execute("SELECT email, kind FROM bounce_events ORDER BY id").fetchall()
    finally:
        conn.close()


def post_json(url: str, payload: dict | str | bytes, **kwargs: object) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else (
        payload if isinstance(payload, str) else json.dumps(payload)).encode()
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return httpx.post(url, content=body, headers=headers, timeout=30, **kwargs)


ALL_ACTIVE = dict.fromkeys(READERS, "active")


# --- Amazon SES through SNS ----------------------------------------------------------------------

@pytest.mark.parametrize("version, subject", [("1", True), ("2", True), ("2", False)])
def test_ses_bounce_with_dsn_over_sns_suppresses_only_the_bounced_reader(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple,
        version: str, subject: bool) -> None:
    """SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA); Subject is signed if present."""
    envelope = sample_json("sns-notification.json")
    envelope["Message"] = sample("ses-bounce-with-dsn.json")
    if not subject:
        del envelope["Subject"]
    message = signed(envelope, signing_key[0], cert_server.cert_url, version)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        reply = httpx.post(f"{hooks}/ses", content=json.dumps(message), timeout=30,
                           headers={"Content-Type": "text/plain; charset=UTF-8"})
    assert reply.status_code == 200, reply.text
    assert statuses(project) == {**ALL_ACTIVE, "jane@example.com": "bounced"}


def test_ses_bounce_without_dsn_suppresses_each_named_recipient(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    message = ses_over_sns(sample("ses-bounce-without-dsn.json"), signing_key[0],
                           cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 200
    assert statuses(project) == {**ALL_ACTIVE, "jane@example.com": "bounced",
                                 "richard@example.com": "bounced"}


@pytest.mark.parametrize("name", ["ses-complaint-with-feedback.json",
                                  "ses-complaint-without-feedback.json"])
def test_ses_complaint_marks_the_reader_complained(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple,
        name: str) -> None:
    message = ses_over_sns(sample(name), signing_key[0], cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 200
    assert statuses(project) == {**ALL_ACTIVE, "richard@example.com": "complained"}


def test_ses_delivery_changes_nothing(project: DeliveryProject, cert_server: CertServer,
                                      signing_key: tuple) -> None:
    message = ses_over_sns(sample("ses-delivery.json"), signing_key[0], cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 200
    assert statuses(project) == ALL_ACTIVE and events(project) == 0


def test_a_replayed_sns_message_counts_once_even_reformatted(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    """The key is the signed content: a replay with other whitespace is the same report."""
    transient = sample_json("ses-bounce-with-dsn.json")
    transient["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull")
    transient["bounce"]["bouncedRecipients"][0].update(
        status="4.2.2", diagnosticCode="smtp; 452 4.2.2 Mailbox full")
    message = ses_over_sns(json.dumps(transient), signing_key[0], cert_server.cert_url)
    fetcher = local_fetcher(cert_server)
    with serving(project, fetcher=fetcher) as hooks:
        first = post_json(f"{hooks}/ses", message)
        again = post_json(f"{hooks}/ses", message)
        reformatted = post_json(f"{hooks}/ses", json.dumps(message, indent=3))
    assert first.text == "ok\n"
    assert again.text == reformatted.text == "already processed\n"
    assert events(project) == 1 and status_of(project, "jane@example.com") == "active"
    assert cert_server.requests.count("/SimpleNotificationService-test.pem") == 1  # cached


def test_a_tampered_sns_message_is_refused_and_changes_nothing(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    message = ses_over_sns(sample("ses-delivery.json"), signing_key[0], cert_server.cert_url)
    message["Message"] = sample("ses-bounce-with-dsn.json")  # signed as a delivery
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        reply = post_json(f"{hooks}/ses", message)
    assert reply.status_code == 403
    assert statuses(project) == ALL_ACTIVE


def test_a_stranger_topic_is_refused_before_any_certificate_is_fetched(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    envelope = sample_json("sns-notification.json")
    envelope.update(Message=sample("ses-bounce-with-dsn.json"),
                    TopicArn="arn:aws:sns:us-west-2:999999999999:Theirs")
    message = signed(envelope, signing_key[0], cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 403
    assert cert_server.requests == [] and statuses(project) == ALL_ACTIVE


def test_the_production_fetcher_never_fetches_a_certificate_off_the_sns_hosts(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    message = ses_over_sns(sample("ses-bounce-with-dsn.json"), signing_key[0],
                           cert_server.cert_url)
    with serving(project) as hooks:  # the default CertificateFetcher
        assert post_json(f"{hooks}/ses", message).status_code == 403
    assert cert_server.requests == [] and statuses(project) == ALL_ACTIVE


@pytest.mark.parametrize("version, signature", [("3", None), ("1", "not base64!"),
                                                ("2", base64.b64encode(b"x" * 256).decode())])
def test_unknown_versions_and_bad_signatures_are_refused(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple, version: str,
        signature: str | None) -> None:
    message = ses_over_sns(sample("ses-bounce-with-dsn.json"), signing_key[0],
                           cert_server.cert_url)
    message["SignatureVersion"] = version
    if signature:
        message["Signature"] = signature
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 403
    assert statuses(project) == ALL_ACTIVE


def test_a_certificate_larger_than_the_cap_is_not_read_to_the_end(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    huge = cert_server.url("/SimpleNotificationService-huge.pem", b"A" * 200_000)
    message = ses_over_sns(sample("ses-bounce-with-dsn.json"), signing_key[0], huge)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 403
    assert statuses(project) == ALL_ACTIVE


def test_subscription_confirmation_gets_the_verified_subscribe_url(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    confirmed: list[str] = []
    documented = sample_json("sns-subscription-confirmation.json")
    message = signed(documented, signing_key[0], cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server), confirm=confirmed.append) as hooks:
        reply = post_json(f"{hooks}/ses", message)
    assert reply.status_code == 200
    assert confirmed == [documented["SubscribeURL"]]


@pytest.mark.parametrize("subscribe_url", [
    "https://sns.us-west-2.amazonaws.com.evil.example/?Action=ConfirmSubscription",
    "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
    "https://127.0.0.1/?Action=ConfirmSubscription",
])
def test_a_subscribe_url_off_the_sns_hosts_is_never_fetched(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple,
        subscribe_url: str) -> None:
    confirmed: list[str] = []
    message = signed(dict(sample_json("sns-subscription-confirmation.json"),
                          SubscribeURL=subscribe_url), signing_key[0], cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server), confirm=confirmed.append) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 403
    assert confirmed == []


def test_unsubscribe_confirmation_is_acknowledged_and_changes_nothing(
        project: DeliveryProject, cert_server: CertServer, signing_key: tuple) -> None:
    message = signed(sample_json("sns-unsubscribe-confirmation.json"), signing_key[0],
                     cert_server.cert_url)
    with serving(project, fetcher=local_fetcher(cert_server)) as hooks:
        assert post_json(f"{hooks}/ses", message).status_code == 200
    assert statuses(project) == ALL_ACTIVE


@pytest.mark.parametrize("url", [
    "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
    "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem",
    "https://SNS.US-EAST-1.AMAZONAWS.COM/SimpleNotificationService-abc.pem",
    "https://sns.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sqs.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://xsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#x",
    "https://sns.us-east-1.amazonaws.com/../SimpleNotificationService-abc.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",
    "https://sns.us-east-1.amazonaws.com\\@evil.example/a.pem",
    "https://sns.us-east-1.amazonaws.com/a.pem\n",
    "https://sns.us-east-1.amazonaws.com./a.pem",
    "https://127.0.0.1/SimpleNotificationService-abc.pem",
    "https://[::1]/SimpleNotificationService-abc.pem",
    "file:///etc/passwd",
    "",
])
def test_the_certificate_url_pattern_refuses_hostile_urls(url: str) -> None:
    assert not sns.is_sns_url(url, pem=True)


@pytest.mark.parametrize("url", [
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem",
    "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
])
def test_the_certificate_url_pattern_admits_sns_hosts(url: str) -> None:
    assert sns.is_sns_url(url, pem=True)


# --- Postmark ------------------------------------------------------------------------------------

def test_postmark_hard_bounce_suppresses_the_reader(project: DeliveryProject) -> None:
    with serving(project) as hooks:
        reply = post_json(f"{hooks}/postmark", sample("postmark-bounce.json"))
    assert reply.status_code == 200
    assert statuses(project) == {**ALL_ACTIVE, "john@example.com": "bounced"}


def test_postmark_spam_complaint_marks_the_reader_complained(project: DeliveryProject) -> None:
    with serving(project) as hooks:
        assert post_json(f"{hooks}/postmark", sample("postmark-spam-complaint.json")
                         ).status_code == 200
    assert statuses(project) == {**ALL_ACTIVE, "john@example.com": "complained"}


def test_postmark_blocked_is_ours_reported_and_never_touches_the_reader(
        project: DeliveryProject, caplog: pytest.LogCaptureFixture) -> None:
    blocked = dict(sample_json("postmark-bounce.json"), Type="Blocked", TypeCode=100006,
                   Details="smtp;554 5.7.1 Service unavailable; client host blocked")
    with serving(project) as hooks:
        assert post_json(f"{hooks}/postmark", blocked).status_code == 200
    assert statuses(project) == ALL_ACTIVE
    assert event_rows(project) == [("john@example.com", "ours")]  # for `newsletter status`
    assert "sender-side failure for john@example.com" in caplog.text  # serve's log


def test_postmark_basic_auth_is_required_when_configured(
        project: DeliveryProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_POSTMARK_AUTH", "postmark:s3cret-pass")
    body = sample("postmark-bounce.json")
    with serving(project) as hooks:
        missing = post_json(f"{hooks}/postmark", body)
        wrong = post_json(f"{hooks}/postmark", body, auth=("postmark", "guess"))
        assert status_of(project, "john@example.com") == "active"
        right = post_json(f"{hooks}/postmark", body, auth=("postmark", "s3cret-pass"))
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert status_of(project, "john@example.com") == "bounced"


# --- Mailgun -------------------------------------------------------------------------------------

def mailgun_signed(name: str, *, at: float | None = None, token: str = "",
                   key: str = MAILGUN_KEY) -> dict:
    """The documented payload with its signature block made with our signing key."""
    payload = sample_json(name)
    stamp = str(int(at if at is not None else time.time()))
    token = token or hashlib.sha256(f"{name}{stamp}".encode()).hexdigest()[:50]
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": stamp, "token": token, "signature": digest}
    return payload


@pytest.mark.parametrize("name, status", [("mailgun-permanent-fail.json", "bounced"),
                                          ("mailgun-complained.json", "complained"),
                                          ("mailgun-unsubscribed.json", "unsubscribed")])
def test_mailgun_documented_events_change_the_reader(project: DeliveryProject, name: str,
                                                     status: str) -> None:
    with serving(project) as hooks:
        assert post_json(f"{hooks}/mailgun", mailgun_signed(name)).status_code == 200
    assert statuses(project) == {**ALL_ACTIVE, "alice@example.com": status}


def test_the_documented_mailgun_signature_is_checked_against_our_key(
        project: DeliveryProject) -> None:
    """The sample as published is signed with Mailgun's example key, not ours."""
    with serving(project) as hooks:
        reply = post_json(f"{hooks}/mailgun", sample("mailgun-permanent-fail.json"))
    assert reply.status_code == 403 and statuses(project) == ALL_ACTIVE


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("change, status", [("wrong key", 403), ("stale", 403),
                                            ("future", 403), ("fresh", 200)])
def test_mailgun_bad_or_stale_signatures_change_nothing(project: DeliveryProject, change: str,
                                                        status: int) -> None:
    payload = mailgun_signed("mailgun-permanent-fail.json", at=NOW.timestamp() + {
        "stale": -301, "future": 301, "fresh": -299}.get(change, 0),
        key="other" if change == "wrong key" else MAILGUN_KEY)
    with serving(project, clock=lambda: NOW) as hooks:
        assert post_json(f"{hooks}/mailgun", payload).status_code == status
    assert status_of(project, "alice@example.com") == ("bounced" if status == 200 else "active")


def test_a_non_ascii_mailgun_signature_is_refused_not_a_server_error(
        project: DeliveryProject) -> None:
    payload = mailgun_signed("mailgun-permanent-fail.json")
    payload["signature"]["signature"] = "\u00e9" * 64
    with serving(project) as hooks:
        assert post_json(f"{hooks}/mailgun", payload).status_code == 403
    assert status_of(project, "alice@example.com") == "active"


def test_a_replayed_mailgun_token_changes_nothing(project: DeliveryProject) -> None:
    """A retry (same bytes) is answered 200 once done; the token with another body is refused."""
    opened = mailgun_signed("mailgun-complained.json", token="t" * 50)
    opened["event-data"]["event"] = "opened"
    forged = copy.deepcopy(opened)
    forged["event-data"]["event"] = "complained"
    failed = mailgun_signed("mailgun-permanent-fail.json")
    with serving(project) as hooks:
        assert post_json(f"{hooks}/mailgun", opened).text == "ignored: not an event we act on\n"
        assert post_json(f"{hooks}/mailgun", forged).status_code == 403
        assert post_json(f"{hooks}/mailgun", failed).text == "ok\n"
        assert post_json(f"{hooks}/mailgun", failed).text == "already processed\n"
    assert statuses(project) == {**ALL_ACTIVE, "alice@example.com": "bounced"}
    assert events(project) == 1


def test_mailgun_route_does_not_exist_without_a_signing_key(
        project: DeliveryProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_MAILGUN_SIGNING_KEY")
    with serving(project) as hooks:
        reply = post_json(f"{hooks}/mailgun", mailgun_signed("mailgun-permanent-fail.json"))
    assert reply.status_code == 404 and statuses(project) == ALL_ACTIVE


# --- what every route shares ---------------------------------------------------------------------

def test_routes_do_not_exist_without_the_secret(project: DeliveryProject,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(project) as hooks:
        wrong = post_json(hooks.replace(SECRET, "hooks-0123456789abcdeX") + "/postmark",
                          sample("postmark-bounce.json"))
    assert wrong.status_code == 404
    monkeypatch.delenv("NEWSLETTER_WEBHOOK_SECRET", raising=False)
    app = create_app(load_config(project.config))
    client = app.test_client()
    reply = client.post(f"{PREFIX}/webhooks/{SECRET}/postmark", data=sample("postmark-bounce.json"),
                        content_type="application/json")
    assert reply.status_code == 404
    assert statuses(project) == ALL_ACTIVE


def test_serve_mounts_the_webhooks_when_the_secret_is_set(
        project: DeliveryProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_WEBHOOK_SECRET", SECRET)
    client = create_app(load_config(project.config)).test_client()
    reply = client.post(f"{PREFIX}/webhooks/{SECRET}/postmark", data=sample("postmark-bounce.json"),
                        content_type="application/json")
    assert reply.status_code == 200
    assert status_of(project, "john@example.com") == "bounced"


def test_a_short_secret_is_refused(project: DeliveryProject) -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_WEBHOOK_SECRET"):
        register_webhooks(create_app(load_config(project.config)),
                          load_config(project.config), secret="short")


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_only_post_is_answered(project: DeliveryProject, method: str) -> None:
    with serving(project) as hooks:
        reply = httpx.request(method, f"{hooks}/postmark", content=sample("postmark-bounce.json"),
                              headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 405 and statuses(project) == ALL_ACTIVE


def test_a_body_over_256_kb_is_refused(project: DeliveryProject) -> None:
    bounce = sample_json("postmark-bounce.json")
    bounce["Content"] = "x" * (257 * 1024)
    with serving(project) as hooks:
        reply = post_json(f"{hooks}/postmark", bounce)
    assert reply.status_code == 413 and statuses(project) == ALL_ACTIVE


@pytest.mark.parametrize("body, content_type, status", [
    ("{", "application/json", 400),
    ('{"RecordType": "Bounce", "RecordType": "Bounce"}', "application/json", 400),
    ('{"RecordType": "Bounce", "Type": "HardBounce", "Email": NaN}', "application/json", 400),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400),
    (b'{"RecordType": "Bounce", "Email": "\xff"}', "application/json", 400),
    ('{"RecordType": "Bounce", "Type": "HardBounce", "Email": "not an address"}',
     "application/json", 400),
    ('{"RecordType": "Bounce", "Type": "NoSuchType", "Email": "john@example.com"}',
     "application/json", 400),
    ("RecordType=Bounce&Email=john@example.com", "application/x-www-form-urlencoded", 415),
    ('{"RecordType": "Open", "Recipient": "john@example.com"}', "application/json", 200),
    ('{"RecordType": "Click", "Recipient": "john@example.com"}', "application/json", 200),
])
def test_malformed_and_unknown_payloads_change_nothing(project: DeliveryProject,
                                                       body: str | bytes, content_type: str,
                                                       status: int) -> None:
    with serving(project) as hooks:
        reply = httpx.post(f"{hooks}/postmark", content=body, timeout=30,
                           headers={"Content-Type": content_type})
    assert reply.status_code == status
    assert statuses(project) == ALL_ACTIVE and events(project) == 0


# --- the mapping from provider fields to the five classes (pure) ---------------------------------

def classes_of(report: object) -> list[tuple[str, str]]:
    return [(r.address, r.klass) for r in report.recipients]  # type: ignore[attr-defined]


def ses_bounce(kind: str, subtype: str, diagnostic: str = "", status: str = "") -> object:
    notice = sample_json("ses-bounce-with-dsn.json")
    notice["bounce"].update(bounceType=kind, bounceSubType=subtype)
    row = {"emailAddress": "jane@example.com", "action": "failed"}
    row.update({k: v for k, v in (("diagnosticCode", diagnostic), ("status", status)) if v})
    notice["bounce"]["bouncedRecipients"] = [row]
    return ses_report(notice)


@pytest.mark.parametrize("kind, subtype, diagnostic, status, klass", [
    ("Permanent", "General", "smtp; 550 5.1.1 user unknown", "5.1.1", "hard"),
    ("Permanent", "NoEmail", "", "", "hard"),
    ("Permanent", "Suppressed", "Amazon SES has suppressed sending to this address", "", "hard"),
    ("Permanent", "OnAccountSuppressionList", "", "", "hard"),
    ("Permanent", "General", "smtp; 550 5.7.1 Service unavailable; client host [192.0.2.1] "
     "blocked using zen.spamhaus.org", "5.7.1", "ours"),
    ("Transient", "MailboxFull", "smtp; 452 4.2.2 Mailbox full", "4.2.2", "soft"),
    ("Transient", "MessageTooLarge", "", "", "soft"),
    ("Transient", "ContentRejected", "smtp; 550 5.7.1 content rejected", "5.7.1", "ours"),
    ("Transient", "AttachmentRejected", "", "", "ours"),
    ("Transient", "General", "", "", "soft"),
    ("Undetermined", "Undetermined", "", "", "soft"),
])
def test_ses_bounce_types_map_to_the_five_classes(kind: str, subtype: str, diagnostic: str,
                                                  status: str, klass: str) -> None:
    assert classes_of(ses_bounce(kind, subtype, diagnostic, status)) == \
        [("jane@example.com", klass)]


def test_ses_not_spam_feedback_is_nobodys_complaint() -> None:
    notice = sample_json("ses-complaint-with-feedback.json")
    notice["complaint"]["complaintFeedbackType"] = "not-spam"
    report = ses_report(notice)
    assert report.kind == "other" and classes_of(report) == [("richard@example.com", "none")]


@pytest.mark.parametrize("postmark_type, code, klass, kind", [
    ("HardBounce", 1, "hard", "bounce"), ("SoftBounce", 4096, "soft", "bounce"),
    ("Transient", 2, "soft", "bounce"), ("DnsError", 256, "soft", "bounce"),
    ("SpamNotification", 512, "complaint", "complaint"),
    ("SpamComplaint", 100001, "complaint", "complaint"), ("Blocked", 100006, "ours", "bounce"),
    ("DMARCPolicy", 100009, "ours", "bounce"), ("BadEmailAddress", 100000, "hard", "bounce"),
    ("AutoResponder", 64, "none", "auto-reply"), ("Unsubscribe", 16, "none", "unsubscribe"),
    ("ManuallyDeactivated", 100002, "none", "bounce"),
])
def test_postmark_bounce_types_map_to_the_five_classes(postmark_type: str, code: int,
                                                       klass: str, kind: str) -> None:
    by_name = postmark_report(dict(sample_json("postmark-bounce.json"), Type=postmark_type,
                                   TypeCode=code, Details=""))
    by_code = postmark_report(dict(sample_json("postmark-bounce.json"), Type="?",
                                   TypeCode=code, Details=""))
    for report in (by_name, by_code):
        assert report.kind == kind and classes_of(report) == [("john@example.com", klass)]


def test_a_postmark_hard_bounce_that_blames_our_ip_is_ours() -> None:
    report = postmark_report(dict(sample_json("postmark-bounce.json"), Details=(
        "smtp;550 5.7.1 Our system has detected that this message is likely suspicious due "
        "to the very low reputation of the sending IP address")))
    assert classes_of(report) == [("john@example.com", "ours")]


@pytest.mark.parametrize("severity, reason, code, message, klass", [
    ("permanent", "bounce", 550, "5.1.1 The email account that you tried to reach does not "
     "exist.", "hard"),
    ("temporary", "generic", 452, "4.2.2 The email account that you tried to reach is over "
     "quota.", "soft"),
    ("permanent", "bounce", 550, "5.7.1 Message blocked due to sender reputation", "ours"),
    ("permanent", "espblock", 0, "", "ours"),
    ("permanent", "old", 0, "", "soft"),
    ("permanent", "suppress-complaint", 607, "Not delivering to a user who marked your "
     "messages as spam", "complaint"),
])
def test_mailgun_failures_map_to_the_five_classes(severity: str, reason: str, code: int,
                                                  message: str, klass: str) -> None:
    event = sample_json("mailgun-permanent-fail.json")["event-data"]
    event.update(severity=severity, reason=reason)
    event["delivery-status"].update(code=code, message=message, description="")
    assert classes_of(mailgun_report(event)) == [("alice@example.com", klass)]


def test_mailgun_events_we_do_not_act_on_are_none() -> None:
    event = sample_json("mailgun-complained.json")["event-data"]
    for name in ("accepted", "opened", "clicked", "stored"):
        assert mailgun_report(dict(event, event=name)) is None


def test_report_from_ses_json_reads_the_mailbox_copy_and_ignores_strangers() -> None:
    report = report_from_ses_json(sample_json("ses-bounce-with-dsn.json"))
    assert report.kind == "bounce" and classes_of(report) == [("jane@example.com", "hard")]
    for stranger in (None, [], "text", {"notificationType": "Bounce"},
                     {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}},
                     {"eventType": "Open", "mail": {}}):
        assert report_from_ses_json(stranger) is None


def test_ses_event_publishing_uses_event_type() -> None:
    notice = sample_json("ses-bounce-with-dsn.json")
    notice["eventType"] = notice.pop("notificationType")
    assert classes_of(ses_report(notice)) == [("jane@example.com", "hard")]


@pytest.mark.parametrize("topics, problem", [
    ('"arn:aws:sns:us-west-2:123456789012:MyTopic"', "must be a list"),
    ('["arn:aws:sqs:us-west-2:123456789012:MyQueue"]', "not an SNS TopicArn"),
    ('["arn:aws:sns:us-west-2:1234:MyTopic"]', "not an SNS TopicArn"),
])
def test_config_names_a_bad_sns_topic(delivery_project: DeliveryProject, topics: str,
                                      problem: str) -> None:
    from newsletter.errors import ConfigError

    with delivery_project.config.open("a", encoding="utf-8") as f:
        f.write(f"\n[webhooks]\nsns_topics = {topics}\n")
    with pytest.raises(ConfigError, match=rf"webhooks\.sns_topics.*{problem}"):
        load_config(delivery_project.config)
