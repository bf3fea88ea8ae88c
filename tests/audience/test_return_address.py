"""Our return addresses: the mailto unsubscribe with the reader's token, VERP envelope senders,
and reading which of them a message was sent to; end to end through aiosmtpd and `bounces`."""

from __future__ import annotations

import email
import mailbox
import re
import sqlite3
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from aiosmtpd.controller import Controller
from conftest_delivery import DeliveryProject
from smtp_server import free_port

from newsletter.audience.return_address import (
    ReturnPaths,
    addressed_token,
    bounce_address,
    unsubscribe_mailto,
    verp_sender,
    verp_subscriber_id,
)
from newsletter.audience.tokens import make_id_token, make_token, verify_token
from newsletter.config import load_config
from newsletter.errors import ConfigError

SECRET = "test-secret"
LIST_ID = "ip-for-business.ipbusiness.example.org"
DOMAIN = "ipbusiness.example.org"
NOW = "2026-11-22T10:00"


def write_config(root: Path, bounces: str) -> Path:
    text = (Path(__file__).resolve().parents[2] / "newsletter.toml").read_text(encoding="utf-8")
    text = text.replace("[bounces]\n", "[bounces]\n" + bounces + "\n", 1)
    text = text.replace('transport = "maildir"\n', "")  # one test sends through SMTP
    path = root / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path):  # noqa: ANN201 - newsletter.config.Config
    return load_config(write_config(tmp_path, 'address = "bounces@ipbusiness.example.org"'))


def mail(to: str = "", subject: str = "", body: str = "", **headers: str) -> Message:
    msg = EmailMessage()
    msg["From"] = "reader@example.com"
    if to:
        msg["To"] = to
    if subject:
        msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body or "\n")
    return email.message_from_bytes(msg.as_bytes())


# --- building our addresses ---------------------------------------------------------------

def test_the_mailto_goes_to_the_bounce_address_with_the_token_in_its_subject(config) -> None:  # noqa: ANN001
    token = make_token(SECRET, LIST_ID, "Ann.Lee@example.com")
    mailto = unsubscribe_mailto(config, token)

    parts = urlsplit(mailto)
    assert (parts.scheme, parts.path) == ("mailto", "bounces@ipbusiness.example.org")
    assert parse_qs(parts.query) == {"subject": [f"unsubscribe {token}"]}
    assert not set(mailto) & set(" <>,\r\n")  # RFC 2369: written whole inside <...>


def test_the_unsubscribe_and_bounce_addresses_default_from_the_config(tmp_path: Path) -> None:
    plain = load_config(write_config(tmp_path, ""))
    assert bounce_address(plain) == "newsletter@ipbusiness.example.org"  # the From address
    assert unsubscribe_mailto(plain, "t" * 20).startswith(
        "mailto:newsletter@ipbusiness.example.org?")
    own = load_config(write_config(tmp_path,
                                   'unsubscribe_address = "leave@ipbusiness.example.org"'))
    assert unsubscribe_mailto(own, "t" * 20).startswith("mailto:leave@ipbusiness.example.org?")


def test_verp_puts_a_short_id_token_in_the_local_part(config) -> None:  # noqa: ANN001
    token = make_id_token(SECRET, LIST_ID, 42)
    sender = verp_sender(config, token)
    assert sender == f"bounces+{token}@{DOMAIN}"
    assert len(sender.split("@")[0]) <= 64  # RFC 5321 4.5.3.1.1
    assert verp_subscriber_id(token.upper(), [SECRET], LIST_ID) == 42  # case lost in transit
    assert verp_subscriber_id(token, ["another-secret"], LIST_ID) is None


def test_the_envelope_sender_is_verp_only_when_enabled_and_for_a_subscriber(
        tmp_path: Path) -> None:
    off = ReturnPaths(load_config(write_config(tmp_path, 'address = "b@ipbusiness.example.org"')),
                      SECRET)
    on = ReturnPaths(load_config(write_config(tmp_path, 'address = "b@ipbusiness.example.org"\n'
                                                        "verp = true")), SECRET)
    assert off.envelope_sender(7) == "b@ipbusiness.example.org"
    assert on.envelope_sender(None) == "b@ipbusiness.example.org"  # a test send (--to)
    local = on.envelope_sender(7).split("@")[0]
    assert re.fullmatch(r"b\+[a-z2-7]{32}", local)
    assert verp_subscriber_id(local.split("+")[1], [SECRET], LIST_ID) == 7


@pytest.mark.parametrize("bounces, message", [
    ('address = "not an address"', "bounces.address' must be one plain ASCII address"),
    ('unsubscribe_address = "a@b.org, c@d.org"', "bounces.unsubscribe_address' must be one"),
    ('verp = "yes"', "bounces.verp' must be true or false"),
    (f'address = "{"b" * 32}@x.org"\nverp = true', "too long for VERP: at most 31"),
    ('address = "b+x@x.org"\nverp = true', "must not contain '+'"),
])
def test_bad_return_path_settings_are_config_errors(tmp_path: Path, bounces: str,
                                                     message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_config(tmp_path, bounces))


def test_a_long_address_token_fits_the_mailto_but_never_a_local_part(config) -> None:  # noqa: ANN001
    longest = "x" * 64 + "@" + ("d" * 60 + ".") * 3 + "example"  # 254 octets (RFC 5321)
    token = make_token(SECRET, LIST_ID, longest)
    assert len(token) > 64 - len("unsubscribe+")  # why the token goes in the subject
    found = addressed_token(mail(to=f"bounces@{DOMAIN}", subject=f"unsubscribe {token}"), config)
    assert found == ("unsubscribe", token)
    assert verify_token([SECRET], LIST_ID, found[1]) == longest


# --- reading where a message was sent -----------------------------------------------------

TOKEN = "QW5uLkxlZUBleGFtcGxlLmNvbQ.abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize("subject", [
    f"unsubscribe {TOKEN}",
    f"Re: unsubscribe {TOKEN}",
    f"Fwd: [IP for Business] Unsubscribe {TOKEN}",
    f"=?utf-8?q?unsubscribe_{TOKEN}?=",  # RFC 2047, as some clients write any subject
    f"unsubscribe%20{TOKEN}",  # a client that did not decode the mailto
])
def test_an_unsubscribe_mail_is_found_by_its_subject(config, subject: str) -> None:  # noqa: ANN001
    assert addressed_token(mail(to=f"bounces@{DOMAIN}", subject=subject), config) == \
        ("unsubscribe", TOKEN)


def test_an_unsubscribe_token_in_the_first_lines_of_the_body_counts(config) -> None:  # noqa: ANN001
    msg = mail(to=f"Newsletter <BOUNCES@{DOMAIN}>", subject="please",
               body=f"Hello,\n\nunsubscribe {TOKEN}\n\nthanks\n")
    assert addressed_token(msg, config) == ("unsubscribe", TOKEN)


@pytest.mark.parametrize("msg", [
    mail(to="someone@example.org", subject=f"unsubscribe {TOKEN}"),  # not our address
    mail(to=f"bounces@{DOMAIN}", subject="Re: Exporting soon? Protect your brand",
         body=f"Thanks!\n\n> Unsubscribe: https://{DOMAIN}/newsletter/unsubscribe/{TOKEN}\n"),
    mail(to=f"bounces@{DOMAIN}", subject="hi", body=f"> unsubscribe {TOKEN}\n"),  # quoted
    mail(to=f"bounces@{DOMAIN}", subject="unsubscribe me please"),  # no token
    mail(to="\udcff@@,,<<", subject="x"),  # hostile
])
def test_other_mail_is_no_unsubscribe(config, msg: Message) -> None:  # noqa: ANN001
    assert addressed_token(msg, config) is None


def test_a_report_is_never_read_as_an_unsubscribe_request_from_its_body(config) -> None:  # noqa: ANN001
    report = (f"To: bounces@{DOMAIN}\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
              'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
              f"--b\r\nContent-Type: text/plain\r\n\r\nunsubscribe {TOKEN}\r\n--b--\r\n")
    assert addressed_token(email.message_from_string(report), config) is None


def test_a_report_to_a_verp_address_names_its_token(config) -> None:  # noqa: ANN001
    token = make_id_token(SECRET, LIST_ID, 5)
    for header in ("Delivered_To", "X_Original_To", "Envelope_To", "To"):
        msg = mail(subject="failure notice", **{header: f"bounces+{token.upper()}@{DOMAIN}"})
        assert addressed_token(msg, config) == ("verp", token)
    elsewhere = mail(to=f"bounces+{token}@example.net", subject="failure notice")
    assert addressed_token(elsewhere, config) is None
    assert addressed_token(elsewhere) == ("verp", token)  # without config: shape only
    assert addressed_token(mail(to=f"bounces+news@{DOMAIN}"), config) is None  # no token shape


# --- end to end: aiosmtpd, the message, `newsletter bounces` --------------------------------

class Recorder:
    """Every envelope the server accepted: MAIL FROM, RCPT TO, the message."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, str, bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802
        for rcpt in envelope.rcpt_tos:
            self.envelopes.append((envelope.mail_from, rcpt.lower(), bytes(envelope.content)))
        return "250 2.0.0 OK"


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    handler = Recorder()
    server = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5)
    server.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{server.port}?timeout=5")
    try:
        yield handler
    finally:
        server.stop()


def use_bounces_settings(project: DeliveryProject, settings: str) -> None:
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace("[bounces]\n", f"[bounces]\n{settings}\n", 1),
                              encoding="utf-8")


def subscriber(project: DeliveryProject, address: str) -> sqlite3.Row:
    with sqlite3.connect(project.db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM subscribers WHERE email = ?", (address,)).fetchone()


def into_maildir(root: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(root / "returns", create=True)
    for raw in messages:
        box.add(raw)
    return root / "returns"


def test_replying_to_the_list_unsubscribe_mailto_unsubscribes_through_bounces(
        delivery_project: DeliveryProject, recorder: Recorder, tmp_path: Path) -> None:
    use_bounces_settings(delivery_project, 'address = "bounces@ipbusiness.example.org"')
    assert delivery_project.cli("send", "--now", NOW) == 0
    reader = delivery_project.addresses[2]
    assert {sender for sender, _, _ in recorder.envelopes} == {f"bounces@{DOMAIN}"}  # no VERP
    [(_, _, data)] = [e for e in recorder.envelopes if e[1] == reader]
    header = email.message_from_bytes(data)["List-Unsubscribe"]
    [mailto] = [u.strip("<>") for u in header.split(", ") if u.startswith("<mailto:")]
    parts = urlsplit(mailto)
    assert parts.path == "bounces@ipbusiness.example.org"

    # What Gmail sends for its "Unsubscribe" button when it uses the mailto.
    request = EmailMessage()
    request["From"] = reader
    request["To"] = unquote(parts.path)
    request["Delivered-To"] = unquote(parts.path)
    request["Subject"] = parse_qs(parts.query)["subject"][0]
    request["Message-ID"] = "<unsub-1@mail.example.com>"
    request.set_content("This message was automatically generated by Gmail.\n")
    forged = EmailMessage()  # the same request with a token that no secret signed
    forged["From"], forged["To"] = delivery_project.addresses[3], unquote(parts.path)
    forged["Subject"] = "unsubscribe " + make_token("not-our-secret", LIST_ID,
                                                    delivery_project.addresses[3])
    forged["Message-ID"] = "<unsub-2@mail.example.com>"
    forged.set_content("x\n")
    returns = into_maildir(tmp_path, request.as_bytes(), forged.as_bytes())

    assert delivery_project.cli("bounces", str(returns)) == 0

    assert subscriber(delivery_project, reader)["status"] == "unsubscribed"
    assert subscriber(delivery_project, delivery_project.addresses[3])["status"] == "active"


@pytest.mark.parametrize("names", [
    "",  # names no address at all
    "<old.alias@forwarder.example.net>:\r\n",  # names the address a forwarder rewrote it to
])
def test_with_verp_each_message_has_its_own_envelope_sender_and_a_bounce_is_attributed_by_it(
        delivery_project: DeliveryProject, recorder: Recorder, tmp_path: Path,
        names: str) -> None:
    use_bounces_settings(delivery_project,
                         'address = "bounces@ipbusiness.example.org"\nverp = true')
    assert delivery_project.cli("send", "--now", NOW) == 0

    senders = {rcpt: sender for sender, rcpt, _ in recorder.envelopes}
    assert set(senders) == set(delivery_project.addresses)
    for address, sender in senders.items():
        local, domain = sender.split("@")
        assert domain == DOMAIN and re.fullmatch(r"bounces\+[a-z2-7]{32}", local)
        token = local.split("+")[1]
        assert verp_subscriber_id(token, [SECRET], LIST_ID) == \
            subscriber(delivery_project, address)["id"]
    assert len(set(senders.values())) == len(senders)
    for _, _rcpt, data in recorder.envelopes:  # the From header stays the newsletter's own
        sent = email.message_from_bytes(data)
        assert getaddresses([sent["From"]])[0][1] == f"newsletter@{DOMAIN}"
        assert "Return-Path" not in sent  # the receiving MTA writes it (RFC 5321 4.4)

    # A bounce in no standard format (qmail's), not naming the subscriber's address.
    reader = delivery_project.addresses[1]
    bounce = (f"From: MAILER-DAEMON@mx.example.net\r\nTo: {senders[reader]}\r\n"
              f"Delivered-To: {senders[reader]}\r\nSubject: failure notice\r\n"
              "Message-ID: <verp-bounce-1@mx.example.net>\r\n\r\n"
              "Hi. This is the mail delivery program at mx.example.net.\r\n"
              "I'm afraid I wasn't able to deliver your message to its recipient.\r\n"
              f"{names}550 5.1.1 The email account that you tried to reach does not exist.\r\n")
    returns = into_maildir(tmp_path, bounce.encode())

    assert delivery_project.cli("bounces", str(returns)) == 0

    assert subscriber(delivery_project, reader)["status"] == "bounced"
    others = [subscriber(delivery_project, a)["status"] for a in delivery_project.addresses
              if a != reader]
    assert set(others) == {"active"}


def test_a_test_send_uses_the_bounce_address_and_the_readers_own_mailto(
        delivery_project: DeliveryProject, recorder: Recorder) -> None:
    use_bounces_settings(delivery_project,
                         'address = "bounces@ipbusiness.example.org"\nverp = true')
    assert delivery_project.cli("send", "2026-11", "--to", "editor@example.org") == 0
    [(sender, rcpt, data)] = recorder.envelopes
    assert (sender, rcpt) == (f"bounces@{DOMAIN}", "editor@example.org")
    header = email.message_from_bytes(data)["List-Unsubscribe"]
    subject = parse_qs(urlsplit(header.split("<mailto:")[1].rstrip(">")).query)["subject"][0]
    assert verify_token([SECRET], LIST_ID, subject.split()[1]) == "editor@example.org"
