"""The rest of the audience side of the store on real SQLite files: the feed cache, the
translation memory, bounce bookkeeping, the subscribe form's requests and the mail queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.config import WebSettings
from newsletter.model import CachedFeed, Subscriber
from newsletter.store import bounces, feeds, mailqueue, optin, suppression, translations
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.db import Db
from newsletter.store.stamps import stamp

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    with open_store(tmp_path / "t.db") as handle:
        yield handle


def test_feed_cache_keeps_the_last_answer_per_url(db: Db) -> None:
    assert feeds.get_feed_cache(db, "https://example.org/feed") is None
    feeds.put_feed_cache(db, "https://example.org/feed", '"v1"', None, b"<rss/>")
    feeds.put_feed_cache(db, "https://example.org/feed", '"v2"', "Sun, 01 Nov 2026", b"\x00")

    assert feeds.get_feed_cache(db, "https://example.org/feed") == \
        CachedFeed('"v2"', "Sun, 01 Nov 2026", b"\x00")


def test_sent_item_ids_are_those_of_earlier_issues_only(db: Db) -> None:
    db.executemany("INSERT INTO sent_items (item_id, issue) VALUES (?, ?)",
                   [("a", "2026-09"), ("b", "2026-10"), ("c", "2026-11")])

    assert feeds.sent_item_ids(db, "2026-11") == {"a", "b"}


def test_translation_memory_recalls_exact_sources_and_keeps_the_latest(db: Db) -> None:
    assert translations.remember_translations(db, "en", "fr", "2026-10",
                                              [("Hello", "Bonjour"), ("Bye", "Salut")]) == 2
    translations.remember_translations(db, "en", "fr", "2026-11", [("Bye", "Au revoir")])

    assert translations.recall_translations(db, "en", "fr", ["Hello", "Bye", "New"]) == \
        {"Hello": "Bonjour", "Bye": "Au revoir"}
    assert translations.recall_translations(db, "en", "es", ["Hello"]) == {}


def test_a_processed_report_is_known_and_its_outcome_cut_to_1000(db: Db) -> None:
    assert not bounces.already_processed(db, "k1")
    bounces.record_processed(db, "k1", stamp(NOW), "x" * 5000)

    assert bounces.already_processed(db, "k1")
    assert len(db.one("SELECT outcome FROM processed_reports")[0]) == 1000


def test_a_rolled_back_run_leaves_nothing(db: Db) -> None:
    with bounces.rolled_back(db):
        bounces.record_processed(db, "k1", stamp(NOW), "dry")
        assert bounces.already_processed(db, "k1")

    assert not bounces.already_processed(db, "k1") and not db.in_transaction


def test_soft_bounces_count_in_their_window_without_delay_warnings(db: Db) -> None:
    for days, reason in [(1, ""), (2, "mailbox full"), (3, "delayed"), (40, "")]:
        suppression.record_event(db, "a@example.org", "soft", f"k{days}",
                                 stamp(NOW - timedelta(days=days)), reason)
    suppression.record_event(db, "a@example.org", "hard", "kh", stamp(NOW))

    assert suppression.recent_soft(db, "A@example.org", stamp(NOW - timedelta(days=30)),
                                   stamp(NOW)) == 2


def test_change_status_and_month_totals(db: Db) -> None:
    store_subscribers.upsert_subscribers(db, [Subscriber("a@example.org")])
    suppression.change_status(db, "a@example.org", "bounced", "hard bounce", stamp(NOW))
    for n, (kind, reason, domain) in enumerate([("hard", "", ""), ("ours", "auth", "x.org"),
                                                ("ours", "auth", "x.org"), ("ours", "", "y.org")]):
        suppression.record_event(db, "a@example.org", kind, f"k{n}", stamp(NOW), reason, domain)

    assert store_subscribers.get_subscriber(db, "a@example.org").status == "bounced"
    start = stamp(NOW.replace(day=1))
    assert bounces.event_counts_since(db, start) == {"hard": 1, "ours": 3}
    assert bounces.top_sender_refusals(db, start) == [("auth", "x.org", 2), ("", "y.org", 1)]
    assert bounces.event_counts_since(db, stamp(NOW + timedelta(days=1))) == {}


def _request(public_id: str, email: str = "Ann@Example.org", client: str = "c1") -> \
        optin.SubscribeRequest:
    return optin.SubscribeRequest(public_id, email, email.lower(), "Ann", "fr", client)


def test_a_subscribe_request_queues_one_confirmation_and_limits_the_rest(db: Db) -> None:
    limits = WebSettings(confirm_per_address_hours=6, per_client_per_hour=2, global_per_hour=9)

    assert optin.record_subscribe_request(db, _request("r1"), limits, NOW) == "queued"
    assert optin.record_subscribe_request(db, _request("r2"), limits, NOW) == "address-limit"
    assert optin.record_subscribe_request(db, _request("r3", "b@example.org"), limits,
                                          NOW) == "client-limit"
    assert store_subscribers.get_subscriber(db, "ann@example.org").status == "pending"
    assert mailqueue.mail_queue_counts(db) == {"pending": 1}


def test_confirming_applies_the_request_once(db: Db) -> None:
    optin.record_subscribe_request(db, _request("r1"), WebSettings(), NOW)
    day_ago = NOW - timedelta(days=1)

    assert optin.get_optin_request(db, "r1", day_ago) == \
        optin.OptinRequest("Ann@Example.org", "Ann", "fr", NOW, False)
    assert optin.confirm_optin_request(db, "r1", day_ago, NOW) == "confirmed"
    assert optin.confirm_optin_request(db, "r1", day_ago, NOW) == "confirmed"
    assert optin.confirm_optin_request(db, "nope", day_ago, NOW) == "invalid"
    sub = store_subscribers.get_subscriber(db, "ann@example.org")
    assert (sub.status, sub.name, sub.language) == ("active", "Ann", "fr")
    assert optin.get_optin_request(db, "r1", NOW + timedelta(seconds=1)) is None


def test_a_bounced_inbox_in_another_spelling_is_suppressed(db: Db) -> None:
    store_subscribers.upsert_subscribers(db, [Subscriber("ab@gmail.com")])
    store_subscribers.set_status(db, "ab@gmail.com", "bounced")
    req = optin.SubscribeRequest("r1", "a.b+x@gmail.com", "ab@gmail.com", "", "en", "c")

    assert optin.record_subscribe_request(db, req, WebSettings(), NOW) == "suppressed"


def test_prune_forgets_old_requests_unconfirmed_addresses_and_settled_mail(db: Db) -> None:
    optin.record_subscribe_request(db, _request("r1"), WebSettings(), NOW)
    [mail] = mailqueue.claim_due_mail(db, "w1", NOW, 10, timedelta(minutes=5))
    mailqueue.settle_mail(db, mail.id, "w1", "sent", "250 ok", NOW)

    later = NOW + timedelta(days=3)
    assert optin.prune_web_records(db, later, later) == 3  # request, pending address, mail
    assert store_subscribers.get_subscriber(db, "ann@example.org") is None


def test_the_mail_queue_claims_settles_and_expires_claims(db: Db) -> None:
    optin.record_subscribe_request(db, _request("r1"), WebSettings(), NOW)
    lease = timedelta(minutes=5)

    [mail] = mailqueue.claim_due_mail(db, "w1", NOW, 10, lease)
    assert (mail.kind, mail.email, mail.ref, mail.attempts) == \
        ("confirm", "Ann@Example.org", "r1", 1)
    assert mailqueue.claim_due_mail(db, "w2", NOW, 10, lease) == []  # claimed: not twice
    assert not mailqueue.settle_mail(db, mail.id, "w2", "sent", "250", NOW)  # not w2's

    retry = NOW + timedelta(minutes=1)
    assert mailqueue.settle_mail(db, mail.id, "w1", "deferred", "451 later", NOW,
                                 retry_at=retry)
    [again] = mailqueue.claim_due_mail(db, "w2", retry, 10, lease)
    assert again.first_deferred_at == NOW and again.attempts == 2

    assert mailqueue.claim_due_mail(db, "w3", retry + lease * 2, 10, lease) == []
    assert mailqueue.mail_queue_counts(db) == {"unknown": 1}  # never resent on its own
