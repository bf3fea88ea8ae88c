"""The ledger's store operations on a real SQLite file and a real PostgreSQL database (the
session's throwaway cluster, tests/pg_cluster.py): freezes, claims, settles, recovery and
the status counts; each is one transaction (a failure inside leaves nothing), and two
connections never claim the same row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.deliver.ledger import resolve
from newsletter.model import Delivery, Edition, Settle
from newsletter.store import claims, editions, ledger, segments
from newsletter.store.connect import open_store
from newsletter.store.db import Db, IntegrityError
from newsletter.store.ledger import Freeze
from newsletter.store.segments import SegmentCount

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ISSUE = "2026-11"


def edition(language: str = "en", issue: str = ISSUE, subject: str = "Hello") -> Edition:
    return Edition(issue, language, subject, "pre", f"<p>{language}</p>", language, "reader")


@pytest.fixture
def url(store_url: str) -> str:  # each engine in turn (tests/pg_cluster.py)
    return store_url


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    conn = open_store(url)
    yield conn
    conn.close()


def add_readers(db: Db, *readers: tuple[str, str, str]) -> list[int]:
    """(email, language, status) rows; returns their ids."""
    ids = []
    for email, language, status in readers:
        db.execute("INSERT INTO subscribers (email, name, language, status, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (email, email.split("@")[0], language, status, NOW.isoformat(),
                    NOW.isoformat()))
        ids.append(db.one("SELECT id FROM subscribers WHERE email = ?", (email,))[0])
    return ids


def one(db: Db, sql: str, params: tuple = ()) -> tuple:
    return tuple(db.one(sql, params))


def states(db: Db, key: str = ISSUE) -> dict[int, str]:
    return {r[0]: r[1] for r in db.all(
        "SELECT subscriber_id, state FROM deliveries WHERE issue = ?", (key,))}


def frozen(db: Db, ids: list[int], **extra: object) -> int:
    return ledger.freeze_issue(db, Freeze(ISSUE, (edition("en"), edition("fr")),
                                          [(i, "en", "") for i in ids], **extra), NOW)


# --- freezes ------------------------------------------------------------------------------


def test_a_freeze_writes_editions_rows_and_items_once(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "fr", "active"))
    assert frozen(db, ids, item_ids=("item-1",)) == 2
    assert editions.is_frozen(db, ISSUE)
    assert editions.frozen_languages(db, ISSUE) == ["en", "fr"]
    assert editions.load_edition(db, ISSUE, "fr") == edition("fr")
    assert states(db) == {ids[0]: "pending", ids[1]: "pending"}
    assert one(db, "SELECT item_id, issue FROM sent_items") == ("item-1", ISSUE)
    # A second sender starting at the same time finds it frozen and writes nothing.
    assert ledger.freeze_issue(db, Freeze(ISSUE, (edition("en", subject="Other"),),
                                          [(ids[0], "de", "")]), NOW) == 0
    assert editions.load_edition(db, ISSUE, "en").subject == "Hello"


def test_a_failure_inside_a_freeze_leaves_nothing(db: Db) -> None:
    ids = add_readers(db, *((f"r{n}@x.org", "en", "active") for n in range(1500)))

    def rows() -> Iterator[tuple[int, str, str]]:
        for n, sub_id in enumerate(ids):
            if n == 1200:  # after the first chunk of 1000 rows went in
                raise RuntimeError("the audience step failed")
            yield sub_id, "en", ""

    with pytest.raises(RuntimeError):
        ledger.freeze_issue(db, Freeze(ISSUE, (edition(),), rows(), item_ids=("i",)), NOW)
    assert not editions.is_frozen(db, ISSUE)
    assert one(db, "SELECT count(*) FROM deliveries")[0] == 0
    assert one(db, "SELECT count(*) FROM sent_items")[0] == 0
    assert not db.in_transaction


def test_a_generator_of_rows_is_read_inside_the_freeze(db: Db) -> None:
    """The plain freeze's rows come from the active readers as the transaction sees them."""
    add_readers(db, *((f"r{n}@x.org", "en", "active") for n in range(2500)))
    add_readers(db, ("gone@x.org", "en", "unsubscribed"))
    rows = ((r.id, "en", "") for r in segments.active_readers(db))
    assert ledger.freeze_issue(db, Freeze(ISSUE, (edition(),), rows), NOW) == 2500


def test_a_plain_freeze_queues_every_active_reader_in_sql(db: Db) -> None:
    """Freeze.everyone: the readers active in the freeze's transaction, each their language's
    edition as the caller's function says (asked once per language)."""
    ids = add_readers(db, *((f"r{n}@x.org", ("en", "fr-CA", "", "de")[n % 4], "active")
                            for n in range(1200)))
    gone = add_readers(db, ("gone@x.org", "fr", "unsubscribed"), ("wait@x.org", "en", "pending"))
    asked: list[str] = []

    def edition_for(language: str) -> str:
        asked.append(language)
        return "fr" if language.startswith("fr") else "en"

    assert ledger.freeze_issue(db, Freeze(ISSUE, (edition("en"), edition("fr")), (),
                                          everyone=edition_for), NOW) == 1200
    assert sorted(asked) == ["", "de", "en", "fr-CA"]
    rows = {r[0]: (r[1], r[2], r[3]) for r in db.all(
        "SELECT subscriber_id, language, variant, state FROM deliveries WHERE issue = ?",
        (ISSUE,))}
    assert set(rows) == set(ids) and not set(gone) & set(rows)
    assert rows[ids[1]] == ("fr", "", "pending") and rows[ids[2]] == ("en", "", "pending")
    assert ledger.edition_counts(db, ISSUE) == {"en": 900, "fr": 300}


def test_a_segmented_freeze_keeps_variants_and_counts(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "en", "active"))
    variant = edition(subject="For Geneva")
    counts = (SegmentCount("en", "", "send", 1, "everyone"),
              SegmentCount("en", "geneva", "send", 1, "everyone"))
    assert ledger.freeze_issue(db, Freeze(
        ISSUE, (edition(),), [(ids[0], "en", ""), (ids[1], "en", "geneva")],
        variants=(("geneva", variant),), counts=counts), NOW) == 2
    assert segments.load_variant(db, ISSUE, "en", "geneva") == variant
    assert segments.load_variant(db, ISSUE, "en", "") == edition()
    assert segments.delivery_variants(db, ISSUE) == [("en", "geneva")]
    assert segments.frozen_counts(db, ISSUE) == list(counts)


def test_a_late_edition_is_frozen_once_under_its_own_key(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "de", "active"), ("b@x.org", "en", "active"))
    frozen(db, ids)
    late = editions.late_key(ISSUE, "de")
    assert late == "2026-11+de" and editions.base_issue(late) == ISSUE
    freeze = Freeze(late, (edition("de"),), [(ids[0], "de", "")])
    assert ledger.freeze_late(db, freeze, NOW) == 1
    assert ledger.freeze_late(db, freeze, NOW) == 0
    assert editions.has_edition(db, ISSUE, "DE")
    assert editions.frozen_languages(db, late) == ["de"]
    assert editions.load_edition(db, late, "de") == edition("de")
    assert states(db, late) == {ids[0]: "pending"}


def test_who_a_late_edition_may_be_for(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "de", "active"), ("b@x.org", "de", "active"),
                      ("c@x.org", "de", "active"))
    frozen(db, ids)
    db.execute("UPDATE deliveries SET state = 'sent' WHERE subscriber_id IN (?, ?)", ids[:2])
    db.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE id = ?", (ids[1],))
    assert ledger.sent_to_active(db, ISSUE) == [(ids[0], "de", "en")]


def test_editions_frozen_since_and_a_missing_edition(db: Db) -> None:
    frozen(db, add_readers(db, ("a@x.org", "en", "active")))
    assert editions.issues_frozen_since(db, NOW - timedelta(days=1)) == [ISSUE]
    assert editions.issues_frozen_since(db, NOW) == []
    with pytest.raises(LookupError):
        editions.load_edition(db, ISSUE, "zh")


# --- claims -------------------------------------------------------------------------------


def test_claims_go_in_subscriber_order_and_suppress_readers_who_left(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "fr", "active"),
                      ("c@x.org", "en", "active"))
    frozen(db, ids)
    db.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE id = ?", (ids[1],))
    first = claims.claim_due(db, ISSUE, "host:1", NOW, transport="maildir:outbox")
    assert [d.subscriber_id for d in first.deliveries] == [ids[0]]
    d = first.deliveries[0]
    assert (d.email, d.name, d.language, d.attempts, d.reader_language) == (
        "a@x.org", "a", "en", 1, "en")
    assert one(db, "SELECT state, claimed_by, transport FROM deliveries WHERE subscriber_id = ?",
                  (ids[0],)) == ("sending", "host:1", "maildir:outbox")
    second = claims.claim_due(db, ISSUE, "host:1", NOW, after=first.last)
    assert (second.deliveries, second.suppressed, second.exhausted) == ((), 1, False)
    assert one(db, "SELECT state, last_reply FROM deliveries WHERE subscriber_id = ?",
                  (ids[1],)) == ("suppressed", "subscriber is unsubscribed")
    third = claims.claim_due(db, ISSUE, "host:1", NOW, 5, after=second.last)
    assert [d.subscriber_id for d in third.deliveries] == [ids[2]]
    assert claims.claim_due(db, ISSUE, "host:1", NOW, 5).exhausted


def test_a_deferred_row_is_due_at_its_time_and_once_per_run(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"))
    frozen(db, ids)
    (d,) = claims.claim_due(db, ISSUE, "o", NOW).deliveries
    retry = NOW + timedelta(minutes=5)
    assert claims.settle(db, Settle(d, "deferred", "451 busy", retry_at=retry,
                                    first_deferred_at=NOW), NOW) == "deferred"
    assert claims.count_due(db, [ISSUE], NOW + timedelta(minutes=4)) == 0
    assert claims.claim_due(db, ISSUE, "o", NOW + timedelta(minutes=4)).exhausted
    assert claims.count_due(db, [ISSUE], retry) == 1
    (again,) = claims.claim_due(db, ISSUE, "o", retry).deliveries
    assert (again.attempts, again.first_deferred_at) == (2, NOW)
    # The last retry may fall before the run that defers it began (the end of the retry
    # period): that run does not claim it again; the next one does.
    claims.settle(db, Settle(again, "deferred", "451", retry_at=retry,
                             first_deferred_at=NOW), NOW + timedelta(minutes=7))
    run_start = NOW + timedelta(minutes=6)
    assert claims.claim_due(db, ISSUE, "o", NOW + timedelta(minutes=8),
                            due_by=run_start).exhausted
    assert claims.claim_due(db, ISSUE, "o", NOW + timedelta(minutes=8)).deliveries


def test_settling_records_each_outcome_only_on_a_row_still_sending(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "en", "active"))
    frozen(db, ids)
    a, b = claims.claim_due(db, ISSUE, "o", NOW, 2).deliveries
    assert claims.settle(db, Settle(a, "sent", "250 ok", "<mid@x>"), NOW) == "sent"
    assert one(db, "SELECT state, message_id, last_reply FROM deliveries WHERE "
                  "subscriber_id = ?", (a.subscriber_id,)) == ("sent", "<mid@x>", "250 ok")
    claims.settle(db, Settle(a, "failed", "late"), NOW)  # not `sending`: unchanged
    assert states(db)[a.subscriber_id] == "sent"
    assert claims.settle(db, Settle(b, "pending", "not attempted"), NOW) == "pending"
    assert one(db, "SELECT attempts FROM deliveries WHERE subscriber_id = ?",
                  (b.subscriber_id,))[0] == 0
    with pytest.raises(ValueError):
        claims.settle(db, Settle(b, "deferred", "451"), NOW)  # not resolved first


def test_a_claim_that_fails_undoes_the_settle_it_carried(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "en", "active"))
    frozen(db, ids)
    (a,) = claims.claim_due(db, ISSUE, "o", NOW).deliveries
    with pytest.raises(IntegrityError):  # a state the schema refuses
        claims.claim_due(db, ISSUE, "o", NOW, settle_first=Settle(a, "lost", ""))
    assert states(db) == {ids[0]: "sending", ids[1]: "pending"}
    done = claims.claim_due(db, ISSUE, "o", NOW, settle_first=Settle(a, "sent", "250", "<m>"))
    assert done.settled == ("sent",) and [d.subscriber_id for d in done.deliveries] == [ids[1]]


def test_two_connections_never_claim_the_same_row(url: str) -> None:
    setup = open_store(url)
    ids = add_readers(setup, *((f"r{n}@x.org", "en", "active") for n in range(300)))
    frozen(setup, ids)
    setup.close()
    claimed: dict[str, list[int]] = {"one": [], "two": []}
    start = threading.Barrier(2)  # both connections open before either claims

    def worker(name: str) -> None:
        conn, after = open_store(url), 0
        start.wait()
        try:
            while not (batch := claims.claim_due(conn, ISSUE, name, NOW, 3,
                                                 after=after)).exhausted:
                claimed[name] += [d.subscriber_id for d in batch.deliveries]
                after = batch.last
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Which connection wins each batch is the scheduler's business (one may win them all on a
    # busy machine); that no row is claimed twice and none is left out is the store's.
    assert not set(claimed["one"]) & set(claimed["two"])
    assert sorted(claimed["one"] + claimed["two"]) == ids


def test_recovery_marks_only_the_dead_owners_rows_unknown(db: Db) -> None:
    ids = add_readers(db, *((f"r{n}@x.org", "en", "active") for n in range(3)))
    frozen(db, ids)
    claims.claim_due(db, ISSUE, "dead", NOW)
    claims.claim_due(db, ISSUE, "alive", NOW)
    claims.claim_due(db, ISSUE, "old", NOW)
    db.execute("UPDATE deliveries SET claimed_by = NULL WHERE claimed_by = 'old'")
    assert sorted(claims.sending_owners(db), key=str) == sorted(["dead", "alive", None], key=str)
    assert claims.recover_claims(db, ["dead", None], NOW) == 2
    assert states(db) == {ids[0]: "unknown", ids[1]: "sending", ids[2]: "unknown"}
    assert one(db, "SELECT last_reply FROM deliveries WHERE subscriber_id = ?",
                  (ids[0],))[0] == claims.INTERRUPTED


def test_resending_unknown_rows_is_all_or_nothing(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"))
    frozen(db, ids)
    db.execute("UPDATE deliveries SET state = 'unknown'")

    def keys() -> Iterator[str]:
        yield ISSUE
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        claims.resend_unknown(db, keys(), NOW)
    assert states(db) == {ids[0]: "unknown"}
    assert claims.resend_unknown(db, [ISSUE], NOW) == 1
    assert states(db) == {ids[0]: "pending"}
    assert ledger.open_issues(db) == [ISSUE] and ledger.all_issues(db) == [ISSUE]


# --- status -------------------------------------------------------------------------------


def test_the_status_counts(db: Db) -> None:
    ids = add_readers(db, ("a@x.org", "en", "active"), ("b@x.org", "fr-CA", "active"),
                      ("c@x.org", "de", "active"))
    ledger.freeze_issue(db, Freeze(ISSUE, (edition("en"), edition("fr")),
                                   [(ids[0], "en", ""), (ids[1], "fr", ""),
                                    (ids[2], "en", "")]), NOW)
    db.execute("UPDATE deliveries SET state = 'failed', last_reply = '550 no' "
               "WHERE subscriber_id = ?", (ids[2],))
    counts = ledger.counts(db)
    assert list(counts) == [ISSUE] and tuple(counts[ISSUE]) == ledger.STATES
    assert (counts[ISSUE]["pending"], counts[ISSUE]["failed"]) == (2, 1)
    assert ledger.counts(db, "2026-12") == {}
    (problem,) = ledger.problem_rows(db, ISSUE)
    assert (problem.email, problem.state, problem.last_reply) == ("c@x.org", "failed", "550 no")
    assert ledger.fallbacks(db, ISSUE) == [("de", "en", 1)]  # fr-CA got fr: no fallback
    assert ledger.edition_counts(db, ISSUE) == {"en": 2, "fr": 1}
    assert ledger.open_issues(db) == [ISSUE]


def test_a_deferral_is_resolved_by_the_retry_policy() -> None:
    d = Delivery(ISSUE, 1, "a@x.org", "a", "en", 1)
    first = resolve(Settle(d, "deferred", "451"), NOW + timedelta(seconds=30))
    assert (first.state, first.retry_at, first.first_deferred_at) == (
        "deferred", NOW + timedelta(minutes=5), NOW + timedelta(seconds=30))
    late = Delivery(ISSUE, 1, "a@x.org", "a", "en", 9, first_deferred_at=NOW)
    gave_up = resolve(Settle(late, "deferred", "451"), NOW + timedelta(hours=72))
    assert (gave_up.state, gave_up.reply) == ("failed", "gave up after 72 h: 451")
