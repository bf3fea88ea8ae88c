"""The SQL of consent: each subscriber's history, forgotten readers, the welcome mark and the
unsubscribe-reason totals (tables of the consent migration in store/migrations_later.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.store.db import Db


@dataclass(frozen=True)
class ConsentEvent:
    """One step of a subscriber's consent: how, when, and for leaving, why."""

    email: str
    at: str  # ISO 8601, UTC
    action: str  # subscribed | unsubscribed | bounced | complained
    source: str  # web form | CSV import | operator | unsubscribe link | return path
    detail: str = ""  # file:line, the form's language and text version, the reason


def record_events(conn: Db, events: Iterable[ConsentEvent]) -> None:
    """Insert events; inside the caller's transaction when there is one."""
    conn.executemany(
        "INSERT INTO consent_events (email, at, action, source, detail) VALUES (?, ?, ?, ?, ?)",
        [(e.email, e.at, e.action, e.source, e.detail[:500]) for e in events])


def history(conn: Db, email: str) -> list[ConsentEvent]:
    return [ConsentEvent(*row) for row in conn.execute(
        "SELECT email, at, action, source, detail FROM consent_events WHERE email = ? "
        "ORDER BY at, id", (email,))]


def existing_addresses(conn: Db, emails: Iterable[str]) -> set[str]:
    """The lower-cased addresses among emails that have a subscriber row (one SELECT per 500:
    an import asks this of 5,000 at a time)."""
    wanted = list(emails)
    found = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        have = {r[0].lower() for r in conn.execute(
            f"SELECT email FROM subscribers WHERE email IN ({marks})", chunk)}
        found |= {e.lower() for e in chunk if e.lower() in have}
    return found


def remember_form(conn: Db, public_id: str, language: str, version: str,
                  text: str, stamp: str) -> None:
    """Which form (language, text version) a subscribe request came from; the text itself
    once per version, so the history can show what a reader agreed to."""
    with conn.transaction():
        conn.execute("INSERT INTO consent_texts (version, language, text, first_seen) "
                     "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (version, language, text, stamp))
        conn.execute("INSERT INTO optin_forms (public_id, language, version) VALUES (?, ?, ?) "
                     "ON CONFLICT (public_id) DO UPDATE SET language = excluded.language, "
                     "version = excluded.version", (public_id, language, version))
        # rows of requests pruned unconfirmed (store.prune_web_records) go with them
        conn.execute("DELETE FROM optin_forms WHERE public_id NOT IN "
                     "(SELECT public_id FROM optin_requests)")


def latest_queued_request(conn: Db, email: str) -> str:
    """The public id of the newest subscribe request for email whose mail was queued."""
    row = conn.execute("SELECT public_id FROM optin_requests WHERE email = ? AND outcome = "
                       "'queued' ORDER BY id DESC LIMIT 1", (email,)).fetchone()
    return str(row[0]) if row else ""


def in_audience(conn: Db, issue: str, subscriber_id: int) -> bool:
    return conn.execute("SELECT 1 FROM deliveries WHERE issue = ? AND subscriber_id = ?",
                        (issue, subscriber_id)).fetchone() is not None


def form_of(conn: Db, public_id: str) -> tuple[str, str] | None:
    """(language, version) of the form a request came from."""
    row = conn.execute("SELECT language, version FROM optin_forms WHERE public_id = ?",
                       (public_id,)).fetchone()
    return (row[0], row[1]) if row else None


def consent_text(conn: Db, version: str) -> str:
    row = conn.execute("SELECT text FROM consent_texts WHERE version = ?", (version,)).fetchone()
    return row[0] if row else ""


def record_confirmation(conn: Db, event: ConsentEvent, public_id: str,
                        forget_keys: Iterable[str], welcome: tuple[str, str] | None) -> bool:
    """One transaction after a confirmed opt-in: the history event, the form row consumed,
    any forgotten mark of this reader lifted (they asked to join again themselves), and,
    when welcome is (key hash, language), the welcome mail queued unless this reader was
    welcomed before. Returns True if a welcome was queued."""
    with conn.transaction():
        record_events(conn, [event])
        conn.execute("DELETE FROM optin_forms WHERE public_id = ?", (public_id,))
        conn.executemany("DELETE FROM forgotten WHERE key_hash = ?", [(k,) for k in forget_keys])
        if welcome is None:
            return False
        key, language = welcome
        if conn.execute("INSERT INTO welcomed (key_hash, at) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (key, event.at)).rowcount == 0:
            return False
        conn.execute(
            "INSERT INTO mail_queue (kind, email, language, ref, state, next_attempt_at, "
            "created_at, updated_at) VALUES ('welcome', ?, ?, '', 'pending', ?, ?, ?)",
            (event.email, language, event.at, event.at, event.at))
        return True


def forgotten_on(conn: Db, keys: Iterable[str]) -> str:
    """The date the reader with one of these key hashes was forgotten, or ''."""
    for key in keys:
        row = conn.execute("SELECT forgotten_on FROM forgotten WHERE key_hash = ?",
                           (key,)).fetchone()
        if row:
            return str(row[0])
    return ""


def all_forgotten(conn: Db) -> dict[str, str]:
    """key hash -> date: read once per import (the table is small next to a list)."""
    return {r[0]: r[1] for r in conn.execute("SELECT key_hash, forgotten_on FROM forgotten")}


def count_reason(conn: Db, reason: str, nonce: str, expires: str,
                 now: str) -> bool:
    """Add one to a reason's total, once per ticket nonce; False if the nonce was used.
    Used nonces are kept only until their ticket expires, and say nothing of whose."""
    with conn.transaction():
        conn.execute("DELETE FROM why_tickets_used WHERE expires < ?", (now,))
        if conn.execute("INSERT INTO why_tickets_used (nonce, expires) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (nonce, expires)).rowcount == 0:
            return False
        conn.execute("INSERT INTO unsubscribe_reasons (reason, count) VALUES (?, 1) "
                     "ON CONFLICT (reason) DO UPDATE SET count = unsubscribe_reasons.count + 1",
                     (reason,))
    return True


def reason_totals(conn: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT reason, count FROM unsubscribe_reasons ORDER BY count DESC, reason")}


def subscriber_record(conn: Db, email: str) -> dict[str, object] | None:
    row = conn.execute("SELECT id, email, name, language, tags, status, reason, created_at, "
                       "updated_at FROM subscribers WHERE email = ?", (email,)).fetchone()
    return dict(zip(("id", "email", "name", "language", "tags", "status", "reason",
                     "created_at", "updated_at"), tuple(row), strict=True)) if row else None


def deliveries_of(conn: Db, subscriber_id: int) -> list[dict[str, str]]:
    return [{"issue": r[0], "language": r[1], "state": r[2], "updated_at": r[3]}
            for r in conn.execute("SELECT issue, language, state, updated_at FROM deliveries "
                                  "WHERE subscriber_id = ? ORDER BY issue", (subscriber_id,))]


def bounces_of(conn: Db, email: str) -> list[dict[str, str]]:
    return [{"kind": r[0], "at": r[1], "reason": r[2]}
            for r in conn.execute("SELECT kind, at, reason FROM bounce_events WHERE email = ? "
                                  "ORDER BY at, id", (email,))]


def latest_issue(conn: Db) -> str:
    """The newest issue with frozen editions (late-edition keys aside), or ''."""
    row = conn.execute("SELECT max(issue) FROM editions").fetchone()
    return row[0] or ""


def forgotten_delivery_counts(conn: Db,
                              issue: str | None = None) -> list[tuple[str, str, int]]:
    """(issue, state, count) of the delivery rows of forgotten readers."""
    query = "SELECT issue, state, sum(count) FROM forgotten_deliveries {} GROUP BY issue, state"
    if issue:
        return [tuple(r) for r in conn.execute(query.format("WHERE issue = ?"), (issue,))]
    return [tuple(r) for r in conn.execute(query.format(""))]
