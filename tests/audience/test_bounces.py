"""Bounce and complaint processing: real MTA-style reports in a real Maildir/mbox, real SQLite."""

from __future__ import annotations

import argparse
import email
import mailbox
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from newsletter.audience.bounces import (
    BounceRun,
    already_processed,
    process_reports,
    record_report,
)
from newsletter.audience.dsn import Recipient, Report, classify, parse_report, report_key
from newsletter.audience.mailboxes import read_mailbox
from newsletter.audience.tokens import DEV_SECRET, make_token, verify_token
from newsletter.cli.bounce_commands import cmd_bounces
from newsletter.config import Config, load_config
from newsletter.errors import InputError
from newsletter.model import Subscriber
from newsletter.store import schema as store_schema
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import database_url, open_store

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bounces"
LIST_ID = "ip-for-business.ipbusiness.example.org"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONFIG = f"""\
[newsletter]
name = "IP for Business"
from = "IP for Business <newsletter@ipbusiness.example.org>"
reply_to = "sme-team@ipbusiness.example.org"
base_url = "https://ipbusiness.example.org/newsletter"
list_id = "{LIST_ID}"
default_language = "en"
timezone = "Europe/Zurich"
postal_address = "IP for Business, 34 chemin des Colombettes, 1211 Geneva 20, Switzerland"

[store]
path = "t.db"

[bounces]
soft_limit = 3
soft_window_days = 30
"""
HARD = ["ann.lee@example.com", "bob.martin@example.org", "carol.white@example.net",
        "dave.ng@example.com", "jules.v@example.com"]
SOFT = ["erin.k@example.org", "ivan.r@example.net"]  # erin.k: a delay warning, then a failure
COMPLAINED = ["frank.o@example.net", "grace.h@example.com"]
EVERYONE = HARD + SOFT + COMPLAINED + ["henry.p@example.org"]


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(data: bytes) -> email.message.Message:
    return parse_report(data)


def all_fixtures() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]


def with_message_id(data: bytes, message_id: str) -> bytes:
    """The same report as a new message (a later bounce for the same address)."""
    return re.sub(rb"(?mi)^Message-Id: .*$", f"Message-Id: <{message_id}>".encode(), data,
                  count=1)


def make_maildir(root: Path, messages: list[bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(root / "Maildir", create=True)
    for data in messages:
        box.add(data)
    return root / "Maildir"


def make_mbox(root: Path, messages: list[bytes]) -> Path:
    box = mailbox.mbox(root / "bounces.mbox", create=True)
    for data in messages:
        box.add(data)
    box.close()
    return root / "bounces.mbox"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "newsletter.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


@pytest.fixture
def conn(config: Config) -> Iterator[sqlite3.Connection]:
    connection = open_store(database_url(config))
    yield connection
    connection.close()


def subscribe(conn: sqlite3.Connection, *addresses: str) -> None:
    store_subscribers.upsert_subscribers(
        conn, [Subscriber(email=a, name=a.split("@")[0]) for a in addresses])


def status_of(conn: sqlite3.Connection, address: str) -> tuple[str, str]:
    sub = store_subscribers.get_subscriber(conn, address)
    assert sub is not None
    return sub.status, sub.reason


def table(conn: sqlite3.Connection, name: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(f"SELECT * FROM {name} ORDER BY 1")]


def outcomes(conn: sqlite3.Connection) -> set[str]:
    """processed_reports outcomes without the " [label]" that names the message."""
    return {re.sub(r" \[[^\]]*\]$", "", row[2]) for row in table(conn, "processed_reports")}


def run(conn: sqlite3.Connection, config: Config, path: Path, **kwargs: object) -> BounceRun:
    return process_reports(conn, read_mailbox(path), config, now=kwargs.pop("now", NOW),
                           **kwargs)  # type: ignore[arg-type]


def namespace(config: Config, path: Path, *, dry_run: bool = False,
              as_json: bool = False) -> argparse.Namespace:
    return argparse.Namespace(config=config.source, path=str(path), dry_run=dry_run,
                              json=as_json)


# --- classify: what each real-world format means ---------------------------------------------

@pytest.mark.parametrize(("name", "kind", "recipients", "detail"), [
    ("postfix_user_unknown.eml", "bounce", [("ann.lee@example.com", "hard")],
     "<Ann.Lee@example.com>: Recipient address rejected: User unknown"),
    ("exim_failed.eml", "bounce", [("bob.martin@example.org", "hard")],
     "mailbox disabled, account closed"),
    ("office365_recipient_not_found.eml", "bounce", [("carol.white@example.net", "hard")],
     "RESOLVER.ADR.RecipientNotFound; Recipient carol.white@example.net not found"),
    ("gmail_no_such_user.eml", "bounce", [("dave.ng@example.com", "hard")],
     "The email account that you tried to reach does not exist"),
    # RFC 3464 2.3.3 "delayed": a warning, still being retried: soft, never counted (below)
    ("postfix_mailbox_full_delayed.eml", "bounce", [("erin.k@example.org", "soft")],
     "Mailbox full"),
    ("postfix_mailbox_full_failed.eml", "bounce", [("erin.k@example.org", "soft")],
     "Mailbox full"),
    ("office365_expired.eml", "bounce", [("ivan.r@example.net", "soft")], "QUEUE.Expired"),
    ("arf_abuse.eml", "complaint", [("frank.o@example.net", "complaint")],
     "abuse report from ExampleMail-FBL"),
    ("arf_headers_only.eml", "complaint", [("grace.h@example.com", "complaint")],
     "abuse report"),
    ("out_of_office.eml", "auto-reply", [], ""),
    # flufl.bounce fails on its 8-bit Action; the DSN's own fields still say 5.1.1
    ("broken_8bit_action.eml", "bounce", [("jules.v@example.com", "hard")], "5.1.1"),
])
def test_each_fixture_is_classified(name: str, kind: str, recipients: list, detail: str) -> None:
    report = classify(parse(raw(name)))
    assert report.kind == kind
    assert [(r.address, r.klass) for r in report.recipients] == recipients
    assert all(detail in r.diagnostic for r in report.recipients)


def test_a_status_code_of_class_4_is_soft_even_when_the_action_is_failed() -> None:
    # Exchange gives up after 24 h with "Action: failed" and 4.4.7: the mailbox may be fine.
    text = raw("office365_expired.eml").decode()
    assert "Action: failed" in text
    report = classify(parse(raw("office365_expired.eml")))
    assert [(r.klass, r.status, r.reason) for r in report.recipients] == [
        ("soft", "4.4.7", "expired")]


def test_a_success_dsn_is_not_a_bounce() -> None:
    data = raw("postfix_user_unknown.eml").replace(b"Action: failed", b"Action: relayed")
    data = data.replace(b"Status: 5.1.1", b"Status: 2.0.0")
    report = classify(parse(data))
    assert report.kind == "delivery"
    assert [r.klass for r in report.recipients] == ["none"]


def test_a_feedback_report_that_is_not_abuse_is_not_a_complaint() -> None:
    data = raw("arf_abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    report = classify(parse(data))
    assert (report.kind, report.detail) == ("other", "feedback-type not-spam")
    assert {r.klass for r in report.recipients} <= {"none"}


def test_a_redacted_complaint_is_traced_by_our_signed_unsubscribe_token() -> None:
    url = "https://ipbusiness.example.org/newsletter/unsubscribe/"
    genuine = make_token(DEV_SECRET, LIST_ID, "grace.h@example.com")
    forged = make_token("not-our-secret", LIST_ID, "henry.p@example.org")
    read_token = partial(verify_token, [DEV_SECRET], LIST_ID)

    def redacted(token: str) -> bytes:
        return raw("arf_headers_only.eml").replace(
            b"To: Grace H <grace.h@example.com>",
            f"To: redacted@example.com\nList-Unsubscribe: <{url}{token}>".encode())

    def complainants(data: bytes) -> list[str]:
        return [r.address for r in classify(parse(data), read_token=read_token).recipients]

    assert complainants(redacted(genuine)) == ["grace.h@example.com"]
    assert complainants(redacted(forged)) == ["redacted@example.com"]


def test_the_key_is_the_bytes_not_the_message_id() -> None:
    # Two different reports may carry one Message-ID (a relay that reuses the original's, a
    # provider that numbers per day); only the same bytes are the same report.
    first = raw("postfix_user_unknown.eml")
    second = first.replace(b"User unknown in virtual", b"User unknown in local")
    assert parse(first)["Message-ID"] == parse(second)["Message-ID"]
    assert report_key(first) != report_key(second)
    assert report_key(first) == report_key(bytes(first))
    assert report_key(first).startswith("sha256:")


@pytest.mark.parametrize("newline", [b"\r", b"\r\n", b"mixed"])
def test_cr_only_and_mixed_line_ends_keep_the_classification(newline: bytes) -> None:
    lines = raw("postfix_user_unknown.eml").split(b"\n")
    if newline == b"mixed":
        data = b"".join(line + (b"\r", b"\r\n", b"\n")[i % 3] for i, line in enumerate(lines))
    else:
        data = newline.join(lines)
    report = classify(parse(data))
    assert [(r.address, r.klass, r.status) for r in report.recipients] == [
        ("ann.lee@example.com", "hard", "5.1.1")]


# --- processing a mailbox --------------------------------------------------------------------

def test_a_maildir_suppresses_the_right_addresses(conn: sqlite3.Connection, config: Config,
                                                  tmp_path: Path) -> None:
    subscribe(conn, *EVERYONE)
    warnings: list[str] = []
    result = run(conn, config, make_maildir(tmp_path, all_fixtures()), on_warning=warnings.append)

    assert (result.read, result.new, result.already) == (11, 11, 0)
    assert (result.bounced, result.complained, result.soft, result.ignored) == (5, 2, 3, 1)
    for address in HARD:
        status, reason = status_of(conn, address)
        assert status == "bounced"
        assert reason.startswith("hard bounce 2026-11-22: 5.1.")
    assert status_of(conn, "ann.lee@example.com")[1] == (
        "hard bounce 2026-11-22: 5.1.1 <Ann.Lee@example.com>: Recipient address rejected: "
        "User unknown in virtual mailbox table")
    for address in COMPLAINED:
        assert status_of(conn, address)[0] == "complained"
    for address in SOFT + ["henry.p@example.org"]:
        assert status_of(conn, address) == ("active", "")
    assert warnings == []
    assert {"bounce: ann.lee@example.com (bounced)",
            "bounce: erin.k@example.org (1 of 3 in 30 days)",
            "complaint: frank.o@example.net (complained)",
            "ignored (auto-reply): auto-reply (RFC 3834)",
            "bounce: erin.k@example.org (a delay warning: not counted toward the limit)",
            "bounce: jules.v@example.com (bounced)"} <= outcomes(conn)
    assert {c.email for c in result.changes} == set(HARD + COMPLAINED)


def test_processing_twice_changes_nothing_the_second_time(conn: sqlite3.Connection,
                                                          config: Config, tmp_path: Path) -> None:
    subscribe(conn, *EVERYONE)
    maildir = make_maildir(tmp_path, all_fixtures())
    run(conn, config, maildir)
    before = (table(conn, "subscribers"), table(conn, "bounce_events"),
              table(conn, "processed_reports"))
    warnings: list[str] = []

    again = run(conn, config, maildir, now=NOW + timedelta(hours=1), on_warning=warnings.append)

    assert (again.read, again.new, again.already) == (11, 0, 11)
    assert (again.bounced, again.complained, again.soft, again.ignored) == (0, 0, 0, 0)
    assert again.changes == [] and warnings == []
    assert "11 already processed" in again.summary(0.1)
    assert (table(conn, "subscribers"), table(conn, "bounce_events"),
            table(conn, "processed_reports")) == before


def test_an_mbox_works_like_a_maildir(conn: sqlite3.Connection, config: Config,
                                      tmp_path: Path) -> None:
    subscribe(conn, *EVERYONE)
    result = run(conn, config, make_mbox(tmp_path, all_fixtures()))
    assert (result.read, result.bounced, result.complained, result.soft) == (11, 5, 2, 3)
    assert status_of(conn, "bob.martin@example.org")[0] == "bounced"


def test_the_same_report_twice_in_one_mailbox_counts_once(conn: sqlite3.Connection,
                                                          config: Config, tmp_path: Path) -> None:
    subscribe(conn, "erin.k@example.org")
    full = raw("postfix_mailbox_full_failed.eml")
    result = run(conn, config, make_maildir(tmp_path, [full, full]))
    assert (result.new, result.already, result.soft) == (1, 1, 1)


# --- soft bounces: a limit within a window ---------------------------------------------------

def add_soft_events(conn: sqlite3.Connection, address: str, days_ago: int, count: int) -> None:
    at = (NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds")
    with conn.transaction():
        conn.executemany("INSERT INTO bounce_events (email, kind, report_key, at) "
                         "VALUES (?, 'soft', ?, ?)",
                         [(address, f"<old-{i}@example.org>", at) for i in range(count)])


def delayed_bounces(*ids: str) -> list[bytes]:
    return [with_message_id(raw("postfix_mailbox_full_failed.eml"), f"{i}@relay.example.org")
            for i in ids]


def test_soft_bounces_suppress_only_at_the_limit_within_the_window(
        conn: sqlite3.Connection, config: Config, tmp_path: Path) -> None:
    subscribe(conn, "erin.k@example.org")
    add_soft_events(conn, "erin.k@example.org", days_ago=40, count=2)  # outside the window

    first = run(conn, config, make_maildir(tmp_path / "a", delayed_bounces("d1", "d2")))
    assert (first.soft, first.bounced) == (2, 0)
    assert status_of(conn, "erin.k@example.org")[0] == "active"

    third = run(conn, config, make_maildir(tmp_path / "b", delayed_bounces("d3")))
    assert (third.soft, third.bounced) == (1, 1)
    assert status_of(conn, "erin.k@example.org") == ("bounced", "3 soft bounces in 30 days")
    assert [c.why for c in third.changes] == ["3 soft bounces in 30 days"]


def test_recent_soft_bounces_count_toward_the_limit(conn: sqlite3.Connection, config: Config,
                                                    tmp_path: Path) -> None:
    subscribe(conn, "erin.k@example.org")
    add_soft_events(conn, "erin.k@example.org", days_ago=10, count=2)
    result = run(conn, config, make_maildir(tmp_path, delayed_bounces("d1")))
    assert result.bounced == 1
    assert status_of(conn, "erin.k@example.org")[0] == "bounced"


# --- who may be changed ------------------------------------------------------------------------

def test_a_complaint_sets_complained_at_once(conn: sqlite3.Connection, config: Config,
                                             tmp_path: Path) -> None:
    subscribe(conn, "frank.o@example.net")
    result = run(conn, config, make_maildir(tmp_path, [raw("arf_abuse.eml")]))
    assert result.complained == 1
    status, reason = status_of(conn, "frank.o@example.net")
    assert status == "complained"
    assert reason == "complaint 2026-11-22: abuse report from ExampleMail-FBL/2.1"


def test_unknown_addresses_change_nothing(conn: sqlite3.Connection, config: Config,
                                          tmp_path: Path) -> None:
    subscribe(conn, "henry.p@example.org")
    result = run(conn, config, make_maildir(tmp_path, all_fixtures()))
    assert (result.new, result.bounced, result.complained, result.soft) == (11, 0, 0, 0)
    assert table(conn, "bounce_events") == []
    assert status_of(conn, "henry.p@example.org") == ("active", "")
    assert "bounce: ann.lee@example.com (not a subscriber)" in outcomes(conn)


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained"])
def test_a_final_status_is_never_changed(conn: sqlite3.Connection, config: Config,
                                         tmp_path: Path, status: str) -> None:
    subscribe(conn, "ann.lee@example.com", "frank.o@example.net", "erin.k@example.org")
    for address in ("ann.lee@example.com", "frank.o@example.net", "erin.k@example.org"):
        store_subscribers.set_status(conn, address, status, "set by the test")
    add_soft_events(conn, "erin.k@example.org", days_ago=1, count=5)
    messages = [raw("postfix_user_unknown.eml"), raw("arf_abuse.eml"),
                raw("postfix_mailbox_full_failed.eml")]

    result = run(conn, config, make_maildir(tmp_path, messages))

    assert (result.bounced, result.complained, result.changes) == (0, 0, [])
    for address in ("ann.lee@example.com", "frank.o@example.net", "erin.k@example.org"):
        assert status_of(conn, address) == (status, "set by the test")
    assert f"bounce: ann.lee@example.com (already {status})" in outcomes(conn)


def test_addresses_match_whatever_their_case(conn: sqlite3.Connection, config: Config,
                                             tmp_path: Path) -> None:
    subscribe(conn, "ANN.LEE@example.com", "frank.o@EXAMPLE.NET")
    run(conn, config, make_maildir(tmp_path, [raw("postfix_user_unknown.eml"),
                                              raw("arf_abuse.eml")]))
    assert status_of(conn, "ann.lee@example.com")[0] == "bounced"
    assert status_of(conn, "frank.o@example.net")[0] == "complained"


# --- the command -----------------------------------------------------------------------------

def test_the_command_prints_each_change_then_one_summary(
        conn: sqlite3.Connection, config: Config, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    subscribe(conn, *EVERYONE)
    maildir = make_maildir(tmp_path, all_fixtures())

    assert cmd_bounces(namespace(config, maildir)) == 0

    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert "bounced  ann.lee@example.com  hard bounce: 5.1.1 <Ann.Lee@example.com>: Recipient " \
           "address rejected: User unknown in virtual mailbox table" in lines
    assert "complained  frank.o@example.net  complaint: abuse report from ExampleMail-FBL/2.1" \
        in lines
    assert len(lines) == 8
    assert re.fullmatch(r"bounces: 11 report\(s\) read, 11 new, 0 already processed; 5 bounced, "
                        r"2 complained, 3 soft recorded, 0 refused for sender reasons, "
                        r"1 ignored in \d+\.\d s", lines[-1])
    assert "warning:" not in err

    assert cmd_bounces(namespace(config, maildir)) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("bounces: 11 report(s) read, 0 new, 11 already processed; 0 bounced")


def test_dry_run_reports_but_changes_nothing(conn: sqlite3.Connection, config: Config,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    subscribe(conn, *EVERYONE)
    maildir = make_maildir(tmp_path, all_fixtures())
    before = table(conn, "subscribers")

    assert cmd_bounces(namespace(config, maildir, dry_run=True)) == 0

    out, _ = capsys.readouterr()
    assert "bounced  ann.lee@example.com  hard bounce: 5.1.1" in out
    assert "bounces (dry run, nothing changed): 11 report(s) read, 11 new" in out
    assert table(conn, "subscribers") == before
    assert table(conn, "processed_reports") == table(conn, "bounce_events") == []
    assert run(conn, config, maildir).new == 11  # the real run still has everything to do


@pytest.mark.parametrize("make", [
    lambda root: root / "missing",
    lambda root: (root / "report.eml").write_bytes(raw("exim_failed.eml")) and root / "report.eml",
    lambda root: (root / "folder").mkdir() or root / "folder",
])
def test_a_bad_path_is_an_input_error_naming_it(config: Config, tmp_path: Path, make) -> None:  # noqa: ANN001
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        cmd_bounces(namespace(config, path))
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{path}: not a Maildir")
    assert not config.store_path.exists()  # checked before the database is opened


def test_a_bad_path_exits_2_through_the_cli(config: Config, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    from newsletter.cli.main import main

    code = main(["--config", str(config.source), "bounces", str(tmp_path / "nowhere")])
    assert code == 2
    assert f"newsletter: {tmp_path / 'nowhere'}: not a Maildir" in capsys.readouterr().err


# --- five classes: what each does ------------------------------------------------------------

def blocked_bounce(message_id: str = "blocked-1@relay.example.org") -> bytes:
    """Our IP on a blocklist: the reader's address is fine."""
    data = re.sub(rb"Recipient address\s+rejected: User unknown in virtual\s+mailbox table",
                  b"Client host [192.0.2.9] blocked using zen.spamhaus.org",
                  raw("postfix_user_unknown.eml")).replace(b"5.1.1", b"5.7.1")
    return with_message_id(data, message_id)


def test_a_sender_side_refusal_never_touches_the_reader(conn: sqlite3.Connection,
                                                        config: Config, tmp_path: Path) -> None:
    subscribe(conn, "ann.lee@example.com")
    result = run(conn, config, make_maildir(tmp_path, [blocked_bounce()]))

    assert status_of(conn, "ann.lee@example.com") == ("active", "")
    assert (result.ours, result.bounced, result.soft, result.changes) == (1, 0, 0, [])
    assert [r[2:] for r in conn.execute("SELECT id, email, kind, reason, domain "
                                        "FROM bounce_events")] == [
        ("ours", "blocked", "example.com")]
    assert "1 refused for sender reasons (1 at example.com: blocked)" in result.summary(0.1)


def test_status_shows_this_months_classes_with_the_top_sender_reasons(
        conn: sqlite3.Connection, config: Config, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    from newsletter.cli.status_commands import cmd_status

    subscribe(conn, *EVERYONE)
    now = datetime.now(UTC)
    messages = all_fixtures() + [blocked_bounce("b1@x"), blocked_bounce("b2@x")]
    run(conn, config, make_maildir(tmp_path, messages), now=now)

    assert cmd_status(argparse.Namespace(config=config.source, issue=None)) == 0
    out = capsys.readouterr().out
    assert ("bounces this month: 5 hard, 3 soft, 2 complaints, 2 refused for sender reasons "
            "(2 at example.com: blocked)") in out.splitlines()


def test_two_reports_sharing_a_message_id_are_both_processed(
        conn: sqlite3.Connection, config: Config, tmp_path: Path) -> None:
    subscribe(conn, "ann.lee@example.com", "bob.martin@example.org")
    first = raw("postfix_user_unknown.eml")
    second = first.replace(b"Ann.Lee@example.com", b"bob.martin@example.org").replace(
        b"ann.lee@example.com", b"bob.martin@example.org")
    assert parse(first)["Message-ID"] == parse(second)["Message-ID"]

    result = run(conn, config, make_maildir(tmp_path, [first, second]))

    assert (result.new, result.already, result.bounced) == (2, 0, 2)
    assert status_of(conn, "bob.martin@example.org")[0] == "bounced"


def test_on_done_follows_each_commit_and_never_a_dry_run(conn: sqlite3.Connection,
                                                         config: Config) -> None:
    done: list[str] = []
    messages = [("one", raw("postfix_user_unknown.eml")), ("two", raw("arf_abuse.eml")),
                ("one again", raw("postfix_user_unknown.eml"))]

    def seen(label: str) -> None:  # committed: another connection sees the row already
        other = open_store(database_url(config))
        count = other.execute("SELECT count(*) FROM processed_reports").fetchone()[0]
        done.append(f"{label}:{count}")
        other.close()

    process_reports(conn, messages, config, now=NOW, dry_run=True, on_done=seen)
    assert done == []
    process_reports(conn, messages, config, now=NOW, on_done=seen)
    assert done == ["one:1", "two:2", "one again:2"]


def test_record_report_applies_a_report_built_elsewhere(conn: sqlite3.Connection,
                                                        config: Config) -> None:
    # The webhooks' path: a provider's payload becomes a Report; the key is theirs.
    subscribe(conn, "ann.lee@example.com", "erin.k@example.org")
    report = Report("bounce", (Recipient("ann.lee@example.com", "hard", "5.1.1", "No such user",
                                         "userunknown"),
                               Recipient("erin.k@example.org", "soft", "4.2.2", "Mailbox full",
                                         "mailboxfull"),
                               Recipient("nobody@example.net", "ours", "5.7.1", "Blocked",
                                         "blocked")))
    result = BounceRun()
    with conn.transaction():
        assert not already_processed(conn, "ses:abc")
        actions = record_report(conn, "ses:abc", report, config, NOW, result, "webhook ses")
    assert actions == ("suppressed", "soft-recorded", "reported")
    assert already_processed(conn, "ses:abc")
    assert status_of(conn, "ann.lee@example.com") == (
        "bounced", "hard bounce 2026-11-22: 5.1.1 No such user")
    assert outcomes(conn) == {"bounce: ann.lee@example.com (bounced), erin.k@example.org "
                              "(1 of 3 in 30 days), nobody@example.net (refused for sender "
                              "reasons: blocked)"}


def test_json_prints_one_object_per_message_and_the_summary_on_stderr(
        conn: sqlite3.Connection, config: Config, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    import json

    subscribe(conn, *EVERYONE)
    maildir = make_maildir(tmp_path, [raw("postfix_user_unknown.eml"), blocked_bounce(),
                                      raw("out_of_office.eml")])

    assert cmd_bounces(namespace(config, maildir, as_json=True)) == 0

    out, err = capsys.readouterr()
    objects = [json.loads(line) for line in out.splitlines()]
    by_kind = {o["kind"]: o for o in objects}
    assert len(objects) == 3 and set(by_kind) == {"bounce", "auto-reply"}
    # the Maildir lists messages written in the same second in any order
    hard = next(o for o in objects if o["recipients"] and o["recipients"][0]["class"] == "hard")
    assert hard["recipients"] == [{
        "address": "ann.lee@example.com", "class": "hard", "status": "5.1.1",
        "diagnostic": "550 5.1.1 <Ann.Lee@example.com>: Recipient address rejected: User "
                      "unknown in virtual mailbox table", "reason": "userunknown",
        "action": "suppressed"}]
    assert hard["source"]  # the message's label from its source (a Maildir key here)
    ours = next(o for o in objects if o["recipients"] and o["recipients"][0]["class"] == "ours")
    assert ours["recipients"][0]["action"] == "reported"
    assert by_kind["auto-reply"]["recipients"] == []
    assert err.startswith("bounces: 3 report(s) read, 3 new")


# --- the return path's own addresses -----------------------------------------------------------

def test_an_unsubscribe_by_mail_with_a_genuine_token_unsubscribes(
        conn: sqlite3.Connection, config: Config, tmp_path: Path) -> None:
    from newsletter.audience.tokens import secret_from_env

    subscribe(conn, "henry.p@example.org", "grace.h@example.com")
    secret = secret_from_env()[0]

    def request(email: str, key: str) -> bytes:
        token = make_token(key, LIST_ID, email)
        return (f"From: {email}\nTo: newsletter@ipbusiness.example.org\n"
                f"Subject: unsubscribe {token}\nMessage-ID: <{email}@mail>\n\n").encode()

    result = run(conn, config, make_maildir(tmp_path, [
        request("henry.p@example.org", secret), request("grace.h@example.com", "forged")]))

    assert status_of(conn, "henry.p@example.org") == ("unsubscribed", "unsubscribe by mail")
    assert status_of(conn, "grace.h@example.com") == ("active", "")  # the token is not ours
    assert (result.unsubscribed, result.ignored) == (1, 1)


def test_a_report_to_our_verp_address_is_about_that_subscriber(
        conn: sqlite3.Connection, config: Config, tmp_path: Path) -> None:
    from newsletter.audience.tokens import make_id_token, secret_from_env

    subscribe(conn, "ann.lee@example.com")
    sub = store_subscribers.get_subscriber(conn, "ann.lee@example.com")
    token = make_id_token(secret_from_env()[0], LIST_ID, sub.id)
    # A forwarder rewrote the recipient: the DSN names an address we never mailed.
    data = raw("postfix_user_unknown.eml").replace(b"Ann.Lee@example.com", b"ann@forward.example")
    data = data.replace(b"ann.lee@example.com", b"ann@forward.example")
    data = f"Delivered-To: newsletter+{token}@ipbusiness.example.org\n".encode() + data

    run(conn, config, make_maildir(tmp_path, [data]))

    assert status_of(conn, "ann.lee@example.com")[0] == "bounced"


# --- the schema ------------------------------------------------------------------------------

def test_old_bounce_rows_survive_the_migration_and_old_keys_are_harmless(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    for statement in ";".join(store_schema._MIGRATIONS[:6]).split(";"):
        if statement.strip():
            old.execute(statement)
    old.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES "
                "('ann.lee@example.com', 'soft', '<x@y>', '2026-11-01T00:00:00+00:00')")
    message_id = parse(raw("postfix_user_unknown.eml"))["Message-ID"]
    old.execute("INSERT INTO processed_reports VALUES (?, '2026-11-01', 'hard: old')",
                ("".join(message_id.split()),))
    old.execute("PRAGMA user_version = 6")
    old.commit()
    old.close()

    conn = open_store(path)
    assert [tuple(r) for r in conn.execute("SELECT email, kind, reason, domain "
                                           "FROM bounce_events")] == [
        ("ann.lee@example.com", "soft", "", "")]
    assert not already_processed(conn, report_key(raw("postfix_user_unknown.eml")))
    conn.close()


def test_delay_warnings_are_soft_but_never_suppress_however_many(
        conn: sqlite3.Connection, config: Config, tmp_path: Path) -> None:
    subscribe(conn, "erin.k@example.org")
    warnings = [with_message_id(raw("postfix_mailbox_full_delayed.eml"), f"w{i}@relay.example")
                for i in range(5)]
    result = run(conn, config, make_maildir(tmp_path, warnings))
    assert (result.new, result.soft, result.bounced) == (5, 5, 0)
    assert status_of(conn, "erin.k@example.org") == ("active", "")
