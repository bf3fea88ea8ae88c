"""Hand-made reports in wordings the corpus does not hold: the rules, not the samples, decide."""

from __future__ import annotations

import sys
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from newsletter.audience.bounce_rules import refusal_class
from newsletter.audience.dsn import classify, parse_report
from newsletter.audience.sender_rules import is_sender_refusal

READER = "reader@example.net"


def dsn(action: str, status: str, diagnostic: str, *, text: str = "") -> bytes:
    """An RFC 3464 report for READER, as a Postfix or Exchange relay writes one."""
    fields = [f"Final-Recipient: rfc822; {READER}", f"Action: {action}", f"Status: {status}"]
    if diagnostic:
        fields.append(f"Diagnostic-Code: smtp; {diagnostic}")
    return (
        "From: MAILER-DAEMON@relay.example.org (Mail Delivery System)\n"
        "To: bounces@news.example.org\nSubject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\n{text or 'Your message could not be delivered.'}\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; relay.example.org\n\n" + "\n".join(fields) + "\n\n"
        "--b\nContent-Type: text/rfc822-headers\n\n"
        f"From: news@news.example.org\nTo: {READER}\nSubject: November\n\n--b--\n"
    ).encode()


def one(data: bytes) -> tuple[str, str]:
    report = classify(parse_report(data))
    assert [r.address for r in report.recipients] == [READER]
    return report.recipients[0].klass, report.recipients[0].reason


@pytest.mark.parametrize(("action", "status", "diagnostic", "klass"), [
    ("failed", "5.1.1", "550 5.1.1 <reader@example.net>: Recipient address rejected: User "
     "unknown in local recipient table", "hard"),
    ("failed", "5.1.2", "550 5.1.2 Host or domain name not found. Name service error for "
     "name=example.net type=MX", "hard"),
    ("failed", "5.0.0", "550 Requested action not taken: mailbox unavailable (account closed)",
     "hard"),
    ("failed", "5.7.1", "550 5.7.1 <reader@example.net>: Recipient address rejected: user "
     "does not exist here", "hard"),  # 5.7.x, yet the address is dead: the text decides
    ("failed", "5.2.2", "552 5.2.2 Quota exceeded (mailbox for user is full)", "soft"),
    ("failed", "5.0.0", "552 Requested mail action aborted: mailbox is over quota", "soft"),
    ("failed", "4.4.7", "Delivery expired (message too old) 'timeout'", "soft"),
    ("failed", "4.7.0", "421 4.7.0 Try again later, closing connection (rate limited)",
     "soft"),
    ("failed", "5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using "
     "zen.spamhaus.org", "ours"),
    ("failed", "5.7.26", "550 5.7.26 This mail has been blocked because the sender is "
     "unauthenticated. Gmail requires all senders to authenticate with SPF or DKIM.", "ours"),
    ("failed", "5.7.1", "550 5.7.1 Unfortunately, messages from [192.0.2.9] weren't sent. "
     "Please contact your Internet service provider since part of their network is on our "
     "block list (S3140)", "ours"),
    ("failed", "5.7.509", "550 5.7.509 Access denied, sending domain example.org does not pass "
     "DMARC verification and has a DMARC policy of reject", "ours"),
    ("failed", "5.7.1", "554 5.7.1 Message rejected as spam by Content Filtering", "ours"),
    ("failed", "5.7.1", "554 5.7.1 <reader@example.net>: Relay access denied", "ours"),
    ("failed", "5.3.4", "552 5.3.4 Message size exceeds fixed limit", "ours"),
    # providers' own codes say more than the enhanced code beside them
    ("failed", "5.5.0", "550 5.5.0 Le compte du destinataire est bloque. The recipient account "
     "is blocked. LPN007_426", "hard"),
    ("failed", "5.1.1", "552 5.1.1 Boite du destinataire pleine. Recipient overquota. OFR_417 "
     "[417]", "soft"),
    ("failed", "5.0.0", "554 Connection refused. This IP address is listed on the Spamhaus "
     "Block List (SBL). IB104", "ours"),
    ("failed", "5.0.0", "554 5.0.0 Your mail was rejected, see AUP#CXBL", "ours"),
    ("failed", "5.7.606", "550 5.7.606 Access denied, banned sending IP [192.0.2.9]", "ours"),
    # "failed" after days of 450 "user unknown": the MTA was told the same each time
    ("failed", "4.1.1", "450 4.1.1 <reader@example.net>: Recipient address rejected: User "
     "unknown in virtual alias table", "hard"),
    ("failed", "4.4.0", "DNS Error: DNS type 'mx' lookup of example.net responded with code "
     "SERVFAIL", "soft"),
    # a multi-line reply (RFC 5321 4.2.1) is read whole: its last line is only a link
    ("failed", "5.2.1", "550-5.2.1 The user you are trying to contact is receiving mail at a "
     "rate that 550-5.2.1 prevents additional messages from being delivered. 550 5.2.1 "
     "https://support.example.com/?p=rate", "soft"),
    ("failed", "5.2.1", "host mx.example.net[192.0.2.7] said: 550-5.2.1 The user you are "
     "trying to contact is receiving mail at a rate that 550-5.2.1 prevents additional "
     "messages from being delivered. 550 5.2.1 https://support.example.com/?p=rate", "soft"),
    # 8-bit UTF-8 in the DSN's fields (RFC 6533), in Japanese: "not found in the Domino
    # directory", "the recipient does not exist"
    ("failed", "5.0.0", "ユーザー Reader (reader@example.net) は Domino ディレクトリ\n"
     " には見つかりません。", "hard"),
    ("failed", "5.0.0", "550 宛先のユーザーは存在しません", "hard"),
    # RFC 3464 2.3.3: a warning; the message is still queued (soft, never counted)
    ("delayed", "4.4.1", "connect to mx.example.net[192.0.2.7]:25: Connection timed out",
     "soft"),
    ("delivered", "2.0.0", "250 2.0.0 OK queued as 4Lq9Dd", "none"),
    ("relayed", "2.0.0", "", "none"),
])
def test_a_dsn_is_classed_by_its_fields_and_words(action: str, status: str, diagnostic: str,
                                                   klass: str) -> None:
    assert one(dsn(action, status, diagnostic))[0] == klass


def test_a_dsn_without_a_diagnostic_is_classed_by_its_text() -> None:
    text = "Delivery to reader@example.net failed: the recipient's mailbox is full."
    assert one(dsn("failed", "5.0.0", "", text=text)) == ("soft", "mailboxfull")


def text_bounce(body: str, subject: str = "failure notice") -> bytes:
    return (f"From: MAILER-DAEMON@mx.example.org\nTo: bounces@news.example.org\n"
            f"Subject: {subject}\n\n{body}\n--- Below this line is a copy of the message.\n\n"
            f"From: news@news.example.org\nTo: {READER}\nSubject: November\n\nHello\n"
            ).encode()


@pytest.mark.parametrize(("body", "klass"), [
    # qmail: the address, then the remote's words
    (f"Hi. This is the qmail-send program at mx.example.org.\n\n<{READER}>:\n"
     "192.0.2.8 does not like recipient.\nRemote host said: 550 5.1.1 No such user here\n"
     "Giving up on 192.0.2.8.\n", "hard"),
    # Exim: refused at MAIL FROM, so the refusal is about us whatever it says
    (f"A message that you sent could not be delivered to one or more of its\nrecipients. "
     f"This is a permanent error. The following address(es) failed:\n\n  {READER}\n"
     "    SMTP error from remote mail server after MAIL FROM:<bounces@news.example.org> "
     "SIZE=1234:\n    550 5.7.1 Sender rejected: SPF check failed\n", "ours"),
    # Sendmail: one line per address
    (f"   ----- The following addresses had permanent fatal errors -----\n<{READER}>\n"
     "    (reason: 552 5.2.2 Mailbox over quota)\n", "soft"),
])
def test_a_bounce_without_a_dsn_is_classed_by_the_paragraph_about_the_address(
        body: str, klass: str) -> None:
    assert one(text_bounce(body))[0] == klass


def test_a_malformed_address_in_our_header_is_ours() -> None:
    """Exim's 'malformed address: X may not follow Y': a broken To header in OUR message,
    never a reason to suppress or count the reader."""
    report = classify(parse_report(text_bounce(
        "A message that you sent contained one or more recipient addresses that were\n"
        f"incorrectly constructed:\n\n  {READER} <other@example.net>: malformed address: "
        f"<other@example.net> may not follow {READER}\n\nThis address has been ignored.\n",
        subject="Mail failure - malformed recipient address")))
    classes = {r.address: r.klass for r in report.recipients}
    assert classes.get(READER) == "ours"
    assert "hard" not in classes.values() and "soft" not in classes.values()


def test_a_temporary_user_unknown_without_a_final_action_is_soft() -> None:
    # RFC 5321 4.2.1: 4yz is transient; one such reply may be a directory that failed
    assert refusal_class("450 4.1.1 <reader@example.net>: Recipient address rejected: User "
                         "unknown", status="4.1.1", code=450) == ("soft", "userunknown")


def test_an_auto_reply_is_not_a_bounce() -> None:
    message = EmailMessage()
    message["From"] = READER
    message["To"] = "news@news.example.org"
    message["Subject"] = "Automatic reply: November"
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834 5.2
    message.set_content("I am out of the office until Monday; your mail will not be "
                        "delivered to anyone else.")
    report = classify(parse_report(message.as_bytes()))
    assert (report.kind, report.recipients) == ("auto-reply", ())


def test_an_ordinary_letter_mentioning_failures_is_not_a_bounce() -> None:
    data = (f"From: {READER}\nTo: news@news.example.org\nSubject: Re: November\n\n"
            "Hi, my colleague alice@example.com says your last issue could not be "
            "opened on her phone. User unknown problem?\n").encode()
    report = classify(parse_report(data))
    assert report.kind == "other" and report.recipients == ()


@pytest.mark.parametrize("data", [b"", b"\x00\xff" * 50, b"Content-Type: multipart/report;\n\n--",
                                  b"From: x\n\n" + b"=" * 10000])
def test_hostile_bytes_never_raise(data: bytes) -> None:
    assert classify(parse_report(data)).kind in ("other", "unparseable", "bounce")


@pytest.mark.parametrize(("code", "text", "stops"), [
    (550, "550 5.7.1 Client host [192.0.2.9] blocked using zen.spamhaus.org", True),
    (550, "550 5.7.26 Unauthenticated email from example.org is not accepted due to "
     "domain's DMARC policy", True),
    (554, "554 Message rejected: spam content", True),
    # 5.7.x, but about the reader's address: a hard bounce, never a reason to stop the run
    (550, "550 5.7.1 <reader@example.net>: Recipient address rejected: User unknown", False),
    (550, "550 5.1.1 No such user", False),
    (450, "450 4.7.1 Client host rejected: blocked", False),  # 4xx: deferred, not a stop
])
def test_send_and_bounces_share_the_sender_side_rules(code: int, text: str,
                                                      stops: bool) -> None:
    assert is_sender_refusal(code, text) is stops
    assert (refusal_class(text, code=code)[0] == "ours") is (stops or code < 500)


def _calls(call: Callable[[], object]) -> int:
    """Python and C function calls made by `call`: a measure of work that no clock or load
    disturbs (speed itself is the bench's)."""
    count = 0

    def seen(_frame: object, _event: str, _arg: object) -> None:
        nonlocal count
        count += 1

    sys.setprofile(seen)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count


def test_a_huge_hostile_report_costs_no_more_than_its_size() -> None:
    """It took minutes once (flufl.bounce and every rule ran on all of it). Four times the
    report: at most four times the parse, and the classification itself barely grows (the
    rules see bounded text)."""
    line = ">>> MAIL FROM:<a@b.example> " + "x@y.example user " * 20 + "\n"

    def transcript(lines: int) -> bytes:  # up to 5 MB of addresses and transcript
        return (f"From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail\n\n"
                f"{line * lines}").encode()

    def diagnostic(words: int) -> bytes:  # up to a 4 MB "diagnostic"
        return dsn("failed", "5.0.0", "a " * words)

    for make, small in ((transcript, 5_000), (diagnostic, 500_000)):
        raws = [make(n) for n in (small, 4 * small)]
        reports = [parse_report(raw) for raw in raws]
        assert [classify(r).kind for r in reports] == ["bounce", "bounce"]
        rules = [_calls(lambda r=r: classify(r)) for r in reports]
        whole = [_calls(lambda raw=raw: classify(parse_report(raw))) for raw in raws]
        assert rules[1] <= 2 * rules[0], rules
        assert whole[1] <= 4.5 * whole[0], whole


def test_a_diagnostic_never_carries_control_characters_to_the_terminal() -> None:
    report = classify(parse_report(dsn("failed", "5.1.1", "550 5.1.1 \x1b]0;owned\x07 User "
                                                          "unknown\x1b[2J")))
    assert report.recipients[0].diagnostic == "550 5.1.1 ]0;owned User unknown [2J"


# Found by a review on messages written apart from the corpus: a reply that blames our IP, our
# message or our sender address while also using an address wording is ours, never hard.
@pytest.mark.parametrize(("status", "diagnostic", "klass"), [
    ("5.7.1", "550 5.7.1 Mailbox unavailable: message rejected, your IP 198.51.100.5 is listed "
     "in dnsbl.sorbs.net", "ours"),
    ("5.7.1", "554 5.7.1 This message has been identified as spam and has been rejected. "
     "Recipient rejected.", "ours"),
    ("5.7.1", "554 5.7.1 <news@letters.example.com>: Sender address rejected: Domain not found",
     "ours"),
    ("5.7.1", "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", "ours"),
    ("5.7.1", "554 5.7.1 Service suspended; Client host [192.0.2.4] blocked", "ours"),
    ("5.0.0", "550 Requested action not taken: mailbox unavailable (blocked by Spamhaus)",
     "ours"),
    ("5.1.1", "550 5.1.1 <reader@example.net>: user unknown (SPF pass)", "hard"),
    ("5.3.2", "553 5.3.2 System not accepting network messages", "soft"),
    ("5.1.1", "550 5.1.1 <reader@example.net>: Recipient address rejected: User unknown in "
     "local recipient table", "hard"),
    ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", "hard"),
])
def test_sender_side_words_decide_before_address_wordings(status: str, diagnostic: str,
                                                          klass: str) -> None:
    assert one(dsn("failed", status, diagnostic))[0] == klass
