"""The send ledger: frozen editions and one delivery row per (issue, subscriber) with its state.

States: pending -> sending -> sent | deferred | failed | unknown | suppressed. A row is claimed
(committed as `sending`) before its SMTP transaction, so a crash leaves evidence, never a resend.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.compose.edition import edition_language
from newsletter.model import Edition
from newsletter.store.db import Db, Row
from newsletter.store.sqlite import transaction

STATES = ("pending", "sending", "sent", "deferred", "failed", "unknown", "suppressed")
OPEN_STATES = ("pending", "sending", "deferred")
RETRY_PERIOD = timedelta(hours=72)
FIRST_RETRY = timedelta(minutes=5)
MAX_RETRY_GAP = timedelta(hours=6)


@dataclass(frozen=True)
class Delivery:
    issue: str
    subscriber_id: int
    email: str
    name: str
    language: str
    attempts: int
    reader_language: str = ""  # the subscriber's own, which the edition may not be in
    variant: str = ""  # the frozen variant of the edition for a segment ("": the plain one)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def is_frozen(conn: Db, issue: str) -> bool:
    return conn.execute("SELECT 1 FROM editions WHERE issue = ? LIMIT 1", (issue,)).fetchone() \
        is not None


def shard_of(email: str, count: int) -> int:
    """Which of `count` shards an address belongs to (0-based): stable on every host."""
    return int.from_bytes(hashlib.sha256(email.lower().encode()).digest()[:8], "big") % count


# Assigns the readers of a segmented issue inside the freeze's transaction: (conn, ledger key,
# stamp, (K, N)) -> rows inserted (newsletter.deliver.segmenting.Segmenter.freeze_rows).
AudienceFreeze = Callable[[Db, str, str, tuple[int, int]], int]


def freeze(conn: Db, editions: Edition | Sequence[Edition],
           item_ids: Iterable[str], now: datetime, *,
           shard: tuple[int, int] | None = None,
           audience: AudienceFreeze | None = None) -> int:
    """Freeze an issue's editions and its audience (the active subscribers now, in shard K of N
    when sharded) in one transaction. The first edition is the default one: a subscriber
    whose language has no edition gets it, and each subscriber gets exactly one edition.
    With `audience` (an issue with segments) it decides who gets which variant instead."""
    editions = [editions] if isinstance(editions, Edition) else list(editions)
    stamp = _iso(now)
    languages = {e.language.lower() for e in editions}
    default = editions[0].language
    conn.create_function("shard_of", 2, shard_of, deterministic=True)
    conn.create_function("edition_for", 1, lambda lang: edition_language(lang, languages,
                                                                         default))
    k, n = shard or (1, 1)
    with transaction(conn):
        if is_frozen(conn, editions[0].issue):
            return 0
        conn.executemany(
            "INSERT INTO editions (issue, language, subject, preheader, html, text, "
            "fallback_name, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.issue, e.language, e.subject, e.preheader, e.html, e.text, e.fallback_name,
              stamp) for e in editions])
        if audience is not None:
            rows = audience(conn, editions[0].issue, stamp, (k, n))
        else:
            rows = conn.execute(
                "INSERT OR IGNORE INTO deliveries (issue, subscriber_id, language, state, "
                "updated_at) SELECT ?, id, edition_for(language), 'pending', ? FROM subscribers "
                "WHERE status = 'active' AND (? = 1 OR shard_of(email, ?) = ?)",
                (editions[0].issue, stamp, n, n, k - 1)).rowcount
        conn.executemany("INSERT OR IGNORE INTO sent_items (item_id, issue) VALUES (?, ?)",
                         [(i, editions[0].issue) for i in item_ids])
    return rows


# A late edition's deliveries are keyed "ISSUE+LANG": a row of their own beside the reader's
# row of the issue, so the ledger keeps each of the two messages exactly once.
LATE_MARK = "+"
LATE_WINDOW = timedelta(days=31)


def base_issue(key: str) -> str:
    return key.split(LATE_MARK, 1)[0]


def late_key(issue: str, language: str) -> str:
    return f"{issue}{LATE_MARK}{language}"


def late_issues_open(conn: Db, now: datetime) -> list[str]:
    """Issues frozen within the last month: a translation ready now still goes out."""
    return [r[0] for r in conn.execute(
        "SELECT issue FROM editions GROUP BY issue HAVING min(frozen_at) > ? ORDER BY issue",
        (_iso(now - LATE_WINDOW),))]


# A segmented late edition: (conn, ledger key, reader ids, stamp) -> rows inserted, each with
# its variant; readers outside its audience or with an empty variant get none.
LateAudience = Callable[[Db, str, list[int], str], int]


def freeze_late(conn: Db, edition: Edition, default: str, now: datetime, *,
                audience: LateAudience | None = None) -> int:
    """Add a language edition to an issue sent without it, and queue it (key ISSUE+LANG) for
    the readers who got another edition only because theirs was missing then. Once: a second
    call finds the edition frozen and adds nothing."""
    stamp, language = _iso(now), edition.language.lower()
    with transaction(conn):
        if conn.execute("SELECT 1 FROM editions WHERE issue = ? AND lower(language) = ?",
                        (edition.issue, language)).fetchone():
            return 0
        earlier = {r[0].lower() for r in conn.execute(
            "SELECT language FROM editions WHERE issue = ?", (edition.issue,))}
        conn.execute(
            "INSERT INTO editions (issue, language, subject, preheader, html, text, "
            "fallback_name, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (edition.issue, edition.language, edition.subject, edition.preheader, edition.html,
             edition.text, edition.fallback_name, stamp))
        readers = [sub_id for sub_id, lang, got in conn.execute(
            "SELECT d.subscriber_id, s.language, d.language FROM deliveries d JOIN subscribers "
            "s ON s.id = d.subscriber_id WHERE d.issue = ? AND d.state = 'sent' AND s.status "
            "= 'active'", (edition.issue,))
            if got.lower() != language
            and edition_language(lang, earlier | {language}, default) == language]
        if audience is not None:
            return audience(conn, late_key(edition.issue, edition.language), readers, stamp)
        conn.executemany(
            "INSERT OR IGNORE INTO deliveries (issue, subscriber_id, language, state, "
            "updated_at) VALUES (?, ?, ?, 'pending', ?)",
            [(late_key(edition.issue, edition.language), sub_id, edition.language, stamp)
             for sub_id in readers])
    return len(readers)


def load_edition(conn: Db, issue: str, language: str) -> Edition:
    row = conn.execute("SELECT * FROM editions WHERE issue = ? AND language = ?",
                       (base_issue(issue), language)).fetchone()
    if row is None:
        raise LookupError(f"no frozen edition for {issue} ({language})")
    return Edition(issue=row["issue"], language=row["language"], subject=row["subject"],
                   preheader=row["preheader"], html=row["html"], text=row["text"],
                   fallback_name=row["fallback_name"])


def frozen_languages(conn: Db, issue: str) -> list[str]:
    if LATE_MARK in issue:  # a late edition's rows are all in its one language
        return [issue.split(LATE_MARK, 1)[1]]
    return [r[0] for r in conn.execute("SELECT language FROM editions WHERE issue = ?", (issue,))]


def _identity(pid: int) -> str:
    """A process's identity that survives PID reuse: boot id and start time (from /proc);
    just the PID where /proc is missing."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command name
    except (OSError, IndexError):
        return str(pid)
    return f"{pid}:{boot}:{start}"


OWNER = f"{socket.gethostname()}:{_identity(os.getpid())}"


def _owner_alive(owner: str | None) -> bool:
    """True if the claiming process is still running on this host (then its rows are not ours
    to recover, even when someone deleted the lock file by hand). A PID reused after a crash
    or a reboot has another start time or boot id, so it does not count as alive."""
    host, _, identity = (owner or "").partition(":")
    pid = identity.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return _identity(int(pid)) == identity


def recover_interrupted(conn: Db, now: datetime) -> int:
    """Rows left `sending` by a crash: the server may have the message, so never resend blindly."""
    owners = [r[0] for r in conn.execute(
        "SELECT DISTINCT claimed_by FROM deliveries WHERE state = 'sending'")]
    dead = [o for o in owners if not _owner_alive(o)]
    total = 0
    with transaction(conn):
        for owner in dead:
            total += conn.execute(
                "UPDATE deliveries SET state = 'unknown', updated_at = ?, last_reply = "
                "'interrupted during delivery (crash or kill); the message may have been sent' "
                "WHERE state = 'sending' AND claimed_by IS ?", (_iso(now), owner)).rowcount
    return total


def resend_unknown(conn: Db, issues: Iterable[str], now: datetime) -> int:
    """The operator's explicit decision to resend rows whose outcome is unknown."""
    total = 0
    with transaction(conn):
        for issue in issues:
            total += conn.execute("UPDATE deliveries SET state = 'pending', updated_at = ? "
                                  "WHERE issue = ? AND state = 'unknown'",
                                  (_iso(now), issue)).rowcount
    return total


def open_issues(conn: Db) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT issue FROM deliveries WHERE state IN ('pending', 'sending', 'deferred') "
        "ORDER BY issue")]


def count_due(conn: Db, issues: list[str], now: datetime) -> int:
    if not issues:
        return 0
    marks = ",".join("?" * len(issues))
    return conn.execute(
        f"SELECT count(*) FROM deliveries WHERE issue IN ({marks}) AND (state = 'pending' OR "
        f"(state = 'deferred' AND next_attempt_at <= ?))", (*issues, _iso(now))).fetchone()[0]


def iter_due(conn: Db, issues: list[str], now: datetime,
             page: int = 500) -> Iterator[tuple[str, int]]:
    """(issue, subscriber_id) of rows to attempt now, streamed a page at a time."""
    for issue in issues:
        last = 0
        while True:
            rows = conn.execute(
                "SELECT subscriber_id FROM deliveries WHERE issue = ? AND subscriber_id > ? AND "
                "(state = 'pending' OR (state = 'deferred' AND next_attempt_at <= ?)) "
                "ORDER BY subscriber_id LIMIT ?", (issue, last, _iso(now), page)).fetchall()
            if not rows:
                break
            for row in rows:
                yield issue, row[0]
            last = rows[-1][0]


@dataclass(frozen=True)
class Settle:
    """The outcome to record for a claimed row: sent, failed, unknown, deferred or pending."""

    delivery: Delivery
    state: str
    reply: str
    message_id: str = ""


def claim(conn: Db, issue: str, subscriber_id: int, now: datetime, *,
          settle_first: Settle | None = None, transport: str = ""
          ) -> tuple[Delivery | None, str]:
    """pending/deferred -> sending, committed; suppressed instead if no longer active.
    transport (e.g. 'smtp://relay:587', 'maildir:outbox') is recorded on the row: the last
    attempt's transport is the one that delivered it.

    settle_first records the worker's previous outcome in the same transaction, so each
    message costs one commit; a worker never holds more than one row in `sending`.
    Returns (the claimed delivery or None, the settled state or "").
    """
    stamp = _iso(now)
    with transaction(conn):
        settled = _settle(conn, settle_first, now) if settle_first else ""
        row = conn.execute(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?, "
            "claimed_by = ?, transport = CASE WHEN ? = '' THEN transport ELSE ? END "
            "WHERE issue = ? AND subscriber_id = ? AND state IN ('pending', "
            "'deferred') AND EXISTS (SELECT 1 FROM subscribers WHERE id = ? AND status = "
            "'active') RETURNING language, attempts, variant",
            (stamp, OWNER, transport, transport, issue, subscriber_id, subscriber_id)
        ).fetchone()
        if row is None:
            _suppress_if_inactive(conn, issue, subscriber_id, stamp)
            return None, settled
        who = conn.execute("SELECT email, name, language FROM subscribers WHERE id = ?",
                           (subscriber_id,)).fetchone()
    return Delivery(issue, subscriber_id, who[0], who[1], row[0], row[1], who[2],
                    row[2]), settled


def _suppress_if_inactive(conn: Db, issue: str, subscriber_id: int,
                          stamp: str) -> None:
    conn.execute(
        "UPDATE deliveries SET state = 'suppressed', updated_at = ?, last_reply = "
        "'subscriber is ' || (SELECT status FROM subscribers WHERE id = ?) "
        "WHERE issue = ? AND subscriber_id = ? AND state IN ('pending', 'deferred')",
        (stamp, subscriber_id, issue, subscriber_id))


def settle(conn: Db, outcome: Settle, now: datetime) -> str:
    """Record one outcome on its own; returns the state written."""
    with transaction(conn):
        return _settle(conn, outcome, now)


def _settle(conn: Db, s: Settle, now: datetime) -> str:
    d, state, extra = s.delivery, s.state, ""
    params: tuple[object, ...] = ()
    if state == "sent":
        extra, params = ", message_id = ?", (s.message_id,)
    elif state == "pending":  # nothing reached the server, or the reply says nothing about us
        extra = ", attempts = attempts - 1"
    elif state == "deferred":
        state, extra, params = _deferral(conn, d, now)
    reply = s.reply
    if state != s.state:
        reply = f"gave up after {RETRY_PERIOD / _HOUR:.0f} h: {reply}"
    conn.execute(f"UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? {extra} "
                 "WHERE issue = ? AND subscriber_id = ? AND state = 'sending'",
                 (state, reply[:500], _iso(now), *params, d.issue, d.subscriber_id))
    return state


_HOUR = timedelta(hours=1)


def _deferral(conn: Db, d: Delivery, now: datetime) -> tuple[str, str, tuple]:
    """4xx: retry later with backoff until the retry period is over; then failed."""
    row = conn.execute("SELECT first_deferred_at FROM deliveries WHERE issue = ? AND "
                       "subscriber_id = ?", (d.issue, d.subscriber_id)).fetchone()
    first = datetime.fromisoformat(row[0]) if row and row[0] else now
    if now - first >= RETRY_PERIOD:
        return "failed", "", ()
    delay = min(FIRST_RETRY * 3 ** (d.attempts - 1), MAX_RETRY_GAP)
    # The last attempt falls at the end of the retry period, not up to a gap after it.
    # Whole minutes: a retry due "at 16:00" must be due for a cron run at 16:00:00, not
    # half a second later (the run's clock has moved on since it started).
    retry_at = min(now + delay, first + RETRY_PERIOD).replace(second=0, microsecond=0)
    return ("deferred", ", next_attempt_at = ?, first_deferred_at = ?",
            (_iso(retry_at), _iso(first)))







def counts(conn: Db, issue: str | None = None) -> dict[str, dict[str, int]]:
    query = "SELECT issue, state, count(*) FROM deliveries {} GROUP BY issue, state ORDER BY issue"
    rows = conn.execute(query.format("WHERE issue = ?"), (issue,)) if issue else conn.execute(
        query.format(""))
    result: dict[str, dict[str, int]] = {}
    for iss, state, n in rows:
        result.setdefault(iss, dict.fromkeys(STATES, 0))[state] = n
    from newsletter.store.consent import forgotten_delivery_counts

    for iss, state, n in forgotten_delivery_counts(conn, issue):  # rows of forgotten readers
        states = result.setdefault(iss, dict.fromkeys(STATES, 0))
        states[state] = states.get(state, 0) + n
    return dict(sorted(result.items()))


def problem_rows(conn: Db, issue: str) -> list[Row]:
    return conn.execute(
        "SELECT s.email, d.state, d.last_reply, d.updated_at FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE d.issue = ? AND d.state IN ('failed', 'unknown') "
        "ORDER BY d.state, s.email", (issue,)).fetchall()


def fallbacks(conn: Db, issue: str) -> list[tuple[str, str, int]]:
    """(subscriber language, edition sent instead, count) where a subscriber's language had
    no edition of this issue."""
    return [tuple(r) for r in conn.execute(
        "SELECT s.language, d.language, count(*) FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE d.issue = ? AND d.language != s.language "
        "AND substr(s.language, 1, instr(s.language || '-', '-') - 1) != d.language "
        "GROUP BY s.language, d.language ORDER BY s.language", (issue,))]


def edition_counts(conn: Db, issue: str) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT language, count(*) FROM deliveries WHERE issue = ? GROUP BY language "
        "ORDER BY language", (issue,))}
