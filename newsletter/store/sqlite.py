"""The SQLite database: schema and migrations, and the small queries each stage needs."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.config import WebSettings
from newsletter.errors import NewsletterError
from newsletter.model import CachedFeed, Subscriber, normalise_mailbox
from newsletter.store.db import Db, Row, StoreError
from newsletter.store.sqlite_db import open_sqlite

# Each entry migrates from version i to i + 1; PRAGMA user_version records where a file is.
_MIGRATIONS = [
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN
            ('active', 'pending', 'unsubscribed', 'bounced', 'complained')),
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE feed_cache (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        body BLOB NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE editions (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        subject TEXT NOT NULL,
        preheader TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        fallback_name TEXT NOT NULL,
        frozen_at TEXT NOT NULL,
        PRIMARY KEY (issue, language)
    );
    CREATE TABLE deliveries (
        issue TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        language TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        first_deferred_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    );
    CREATE INDEX deliveries_by_state ON deliveries (state, issue);
    CREATE TABLE sent_items (
        item_id TEXT PRIMARY KEY,
        issue TEXT NOT NULL
    );
    """,
    # 2: bounce and complaint processing
    """
    CREATE TABLE processed_reports (
        report_key TEXT PRIMARY KEY,
        processed_at TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE TABLE bounce_events (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        report_key TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX bounce_events_by_email ON bounce_events (email, kind, at);
    """,
    # 3: double opt-in bookkeeping (one confirmation email per address per few minutes)
    """
    ALTER TABLE subscribers ADD COLUMN confirm_sent_at TEXT;
    """,
    # 4: which version of each subscriber CSV was imported last (send skips unchanged files)
    """
    CREATE TABLE imported_files (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        imported_at TEXT NOT NULL
    );
    """,
    # 5: which process claimed a row, so recovery never takes a live sender's rows
    """
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    """,
    # web: subscribe requests (applied only when their own link is confirmed) and the
    # outgoing-mail queue that the serve worker delivers outside the request
    """
    CREATE TABLE optin_requests (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL COLLATE NOCASE,
        mailbox TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT '',
        client TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL,
        created_at TEXT NOT NULL,
        confirmed_at TEXT
    );
    CREATE INDEX optin_by_mailbox ON optin_requests (mailbox, outcome, created_at);
    CREATE INDEX optin_by_client ON optin_requests (client, created_at);
    CREATE INDEX optin_by_time ON optin_requests (outcome, created_at);
    CREATE TABLE mail_queue (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm')),
        email TEXT NOT NULL,
        language TEXT NOT NULL,
        ref TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_deferred_at TEXT,
        claimed_by TEXT,
        claimed_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at);
    """,
    # bounce classes: 'ours' (sender-side refusals, never a reader's fault) and 'unsubscribe'
    # events with their reason and remote domain; the table is rebuilt to widen its CHECK.
    # processed_reports keys are now sha256 of the bytes; old Message-ID keys never match one.
    """
    CREATE TABLE bounce_events_v7 (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'ours', 'complaint', 'unsubscribe')),
        report_key TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        domain TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO bounce_events_v7 (id, email, kind, report_key, at)
        SELECT id, email, kind, report_key, at FROM bounce_events;
    DROP TABLE bounce_events;
    ALTER TABLE bounce_events_v7 RENAME TO bounce_events;
    CREATE INDEX bounce_events_by_email ON bounce_events (email, kind, at);
    CREATE INDEX bounce_events_by_time ON bounce_events (at, kind);
    """,
    # the translation memory: one row per (languages, source text); `translate import`
    # stores each unit, `translate export` pre-fills identical sources (newsletter.xliff).
    """
    CREATE TABLE translation_memory (
        source_language TEXT NOT NULL,
        target_language TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        source_text TEXT NOT NULL,
        target_text TEXT NOT NULL,
        issue TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source_language, target_language, source_hash)
    )
    """,
    # the fields a reader set themselves (preferences page, confirmed subscribe form): a CSV
    # import keeps them and reports the difference (newsletter.store_reader)
    """
    CREATE TABLE reader_fields (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        field TEXT NOT NULL CHECK (field IN ('name', 'language')),
        changed_at TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, field)
    )
    """,
    # segments: the variant (the `only` tags a reader has) of each delivery row, the frozen
    # variants of each edition, and per freeze how many readers each variant, an empty
    # variant or the audience took (newsletter.store_segments)
    """
    ALTER TABLE deliveries ADD COLUMN variant TEXT NOT NULL DEFAULT '';
    CREATE TABLE edition_variants (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        subject TEXT NOT NULL,
        preheader TEXT NOT NULL,
        html TEXT NOT NULL,
        text TEXT NOT NULL,
        fallback_name TEXT NOT NULL,
        PRIMARY KEY (issue, language, variant)
    );
    CREATE TABLE segment_counts (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        variant TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('send', 'empty', 'excluded')),
        readers INTEGER NOT NULL,
        audience TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (issue, language, variant, outcome)
    )
    """,
    # consent (newsletter.store_consent): each subscriber's history, the subscribe form's
    # text versions, the keyed hashes of forgotten readers (and their ledger rows as counts),
    # the welcome mail's once-per-reader mark, unsubscribe-reason totals; mail_queue is
    # rebuilt to widen its kind CHECK to the welcome mail.
    """
    CREATE TABLE consent_events (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL COLLATE NOCASE,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX consent_by_email ON consent_events (email, at);
    CREATE TABLE consent_texts (
        version TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        text TEXT NOT NULL,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE optin_forms (
        public_id TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        version TEXT NOT NULL
    );
    CREATE TABLE forgotten (
        key_hash TEXT PRIMARY KEY,
        forgotten_on TEXT NOT NULL
    );
    CREATE TABLE forgotten_deliveries (
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        state TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (issue, language, state)
    );
    CREATE TABLE welcomed (
        key_hash TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    CREATE TABLE unsubscribe_reasons (
        reason TEXT PRIMARY KEY,
        count INTEGER NOT NULL
    );
    CREATE TABLE why_tickets_used (
        nonce TEXT PRIMARY KEY,
        expires TEXT NOT NULL
    );
    CREATE TABLE mail_queue_v2 (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome')),
        email TEXT NOT NULL,
        language TEXT NOT NULL,
        ref TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_deferred_at TEXT,
        claimed_by TEXT,
        claimed_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO mail_queue_v2 SELECT * FROM mail_queue;
    DROP TABLE mail_queue;
    ALTER TABLE mail_queue_v2 RENAME TO mail_queue;
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at)
    """,
    # reach (newsletter.store_reach): each frozen edition's counted links and canary, with
    # click totals; a row names an issue, a language and a URL, never a reader
    """
    CREATE TABLE reach_links (
        id TEXT PRIMARY KEY,
        issue TEXT NOT NULL,
        language TEXT NOT NULL,
        url TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('link', 'canary')),
        position INTEGER NOT NULL,
        clicks INTEGER NOT NULL DEFAULT 0,
        filtered INTEGER NOT NULL DEFAULT 0,
        UNIQUE (issue, language, kind, url)
    );
    CREATE INDEX reach_links_by_issue ON reach_links (issue, language, position)
    """,
    # which transport each delivery row was handed to ('smtp://relay.example.org:587' without
    # the login, or 'maildir:outbox'), so `status` says where an issue went (store_transport)
    """
    ALTER TABLE deliveries ADD COLUMN transport TEXT NOT NULL DEFAULT ''
    """,
    # the data link a reader asks for (newsletter.store_manage): mail_queue is rebuilt to
    # widen its kind CHECK to 'manage'
    """
    CREATE TABLE mail_queue_v3 (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome', 'manage')),
        email TEXT NOT NULL,
        language TEXT NOT NULL,
        ref TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        first_deferred_at TEXT,
        claimed_by TEXT,
        claimed_at TEXT,
        message_id TEXT,
        last_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO mail_queue_v3 SELECT * FROM mail_queue;
    DROP TABLE mail_queue;
    ALTER TABLE mail_queue_v3 RENAME TO mail_queue;
    CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at)
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path) -> Db:
    """Open (creating or migrating) the database; WAL so readers never block the sender."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_owner_only(path)
        conn = open_sqlite(str(path))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path)
    except StoreError as exc:
        raise StoreError(exc.detail, where=str(path)) from exc
    return conn


def _create_owner_only(path: Path) -> None:
    """Create a new database file 0600: it holds personal data. SQLite gives the -wal and
    -shm files it makes beside it the database's own permissions (os_unix.c,
    findCreateFileMode), so they are owner-only too. An existing file keeps its mode.

    Only a new file is opened here: closing any descriptor of a database file drops every
    POSIX lock this process holds on it (fcntl semantics), including the locks of the
    other threads' SQLite connections, which then fail with "disk I/O error"."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):  # another process or thread made it just now
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _migrate(conn: Db, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NewsletterError(f"database schema {version} is newer than this program "
                              f"({SCHEMA_VERSION}); upgrade newsletter", where=str(path))
    for target in range(version, SCHEMA_VERSION):
        with transaction(conn):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")


@contextmanager
def transaction(conn: Db, *, immediate: bool = True) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: writers queue on the lock instead of failing mid-way."""
    with conn.transaction(immediate=immediate):
        yield


def get_feed_cache(conn: Db, url: str) -> CachedFeed | None:
    row = conn.execute("SELECT etag, last_modified, body FROM feed_cache WHERE url = ?",
                       (url,)).fetchone()
    return CachedFeed(row["etag"], row["last_modified"], row["body"]) if row else None


def put_feed_cache(conn: Db, url: str, etag: str | None,
                   last_modified: str | None, body: bytes) -> None:
    conn.execute(
        "INSERT INTO feed_cache (url, etag, last_modified, body, fetched_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, "
        "last_modified = excluded.last_modified, body = excluded.body, "
        "fetched_at = excluded.fetched_at",
        (url, etag, last_modified, body, now_iso()))


def sent_item_ids(conn: Db, before_issue: str) -> set[str]:
    """Feed item ids (and normalised links) that went out in an earlier issue."""
    return {r[0] for r in conn.execute("SELECT item_id FROM sent_items WHERE issue < ?",
                                       (before_issue,))}



# --- subscribers -------------------------------------------------------------------------

_SUBSCRIBER_COLUMNS = "id, email, name, language, tags, status, reason"


def _subscriber(row: Row) -> Subscriber:
    return Subscriber(email=row["email"], name=row["name"], language=row["language"],
                      tags=tuple(t for t in row["tags"].split(";") if t), status=row["status"],
                      reason=row["reason"], id=row["id"])


def upsert_subscribers(conn: Db, subs: Iterable[Subscriber]) -> tuple[int, int]:
    """Insert new addresses, refresh name/language/tags of known ones; never touch status.

    Returns (added, updated). Someone who unsubscribed, bounced or complained stays so, and
    a name or language the reader set themselves stays theirs (store_reader.merge_subscribers,
    which also says which values it kept).
    """
    from newsletter.store.reader import merge_subscribers

    merged = merge_subscribers(conn, subs)
    return merged.added, merged.updated


def add_subscriber(conn: Db, sub: Subscriber) -> str:
    """`subscribers add`: a new address becomes active; a known active one is left alone.

    Returns the status the address has afterwards. An unsubscribed address is not
    re-activated here: that takes the subscriber's own confirmation (double opt-in).
    """
    upsert_subscribers(conn, [sub])
    return get_subscriber(conn, sub.email).status  # type: ignore[union-attr]


def get_subscriber(conn: Db, email: str) -> Subscriber | None:
    row = conn.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE email = ?",
                       (email,)).fetchone()
    return _subscriber(row) if row else None


def set_status(conn: Db, email: str, status: str, reason: str = "") -> bool:
    """Change a subscriber's status (unsubscribe, bounce, complaint); True if the row exists."""
    with transaction(conn):
        cur = conn.execute("UPDATE subscribers SET status = ?, reason = ?, updated_at = ? "
                           "WHERE email = ?", (status, reason, now_iso(), email))
    return cur.rowcount > 0


def iter_subscribers(conn: Db, status: str | None = None,
                     page: int = 1000) -> Iterator[Subscriber]:
    """Stream subscribers in id order, a page at a time: memory stays flat in list size."""
    last = 0
    where = "AND status = ?" if status else ""
    while True:
        params: tuple = (last, status, page) if status else (last, page)
        rows = conn.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id > ? "
                            f"{where} ORDER BY id LIMIT ?", params).fetchall()
        if not rows:
            return
        for row in rows:
            yield _subscriber(row)
        last = rows[-1]["id"]


def subscriber_counts(conn: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT status, count(*) FROM subscribers GROUP BY status ORDER BY status")}


def update_profile(conn: Db, email: str, name: str, language: str) -> None:
    """The reader's own edit: the fields it changes are the reader's from now on (a later
    CSV import keeps them: store_reader)."""
    from newsletter.store.reader import save_reader_profile

    save_reader_profile(conn, email, name, language)


def imported_digest(conn: Db, path: str) -> str:
    row = conn.execute("SELECT sha256 FROM imported_files WHERE path = ?", (path,)).fetchone()
    return row[0] if row else ""


def record_import(conn: Db, path: str, digest: str) -> None:
    conn.execute("INSERT INTO imported_files (path, sha256, imported_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, "
                 "imported_at = excluded.imported_at", (path, digest, now_iso()))


def subscriber_languages(conn: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT language, count(*) FROM subscribers WHERE status = 'active' GROUP BY language")}


# --- the subscribe form's requests and the outgoing-mail queue (newsletter serve) --------

NO_MAIL_STATUSES = ("bounced", "complained")  # only an operator's action mails these again


@dataclass(frozen=True)
class SubscribeRequest:
    """What one subscribe form POST asks for; applied only when its own link is confirmed."""

    public_id: str
    email: str  # as typed (normalised by email_validator)
    mailbox: str  # the key of the per-address cap: lower-case, no +tag, Gmail dots removed
    name: str
    language: str
    client: str  # the key of the per-client limit


@dataclass(frozen=True)
class OptinRequest:
    email: str
    name: str
    language: str
    created_at: datetime
    confirmed: bool = False


@dataclass(frozen=True)
class QueuedMail:
    id: int
    kind: str
    email: str
    language: str
    ref: str  # for kind "confirm": the opt-in request's public id
    attempts: int
    first_deferred_at: datetime | None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def record_subscribe_request(conn: Db, req: SubscribeRequest, limits: WebSettings,
                             now: datetime) -> str:
    """One transaction: decide whether this request may send mail, record it, and queue the
    confirmation. Returns the outcome: queued, suppressed, client-limit, address-limit or
    global-limit."""
    stamp = _stamp(now)
    with transaction(conn):
        outcome = _subscribe_outcome(conn, req, limits, now)
        queued = outcome == "queued"
        conn.execute(
            "INSERT INTO optin_requests (public_id, email, mailbox, name, language, client, "
            "outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (req.public_id, req.email, req.mailbox, req.name if queued else "",
             req.language if queued else "", req.client, outcome, stamp))
        if queued:
            # A pending row (no name, no language: those wait for the confirmation) lets the
            # return path record a bounce or complaint about the confirmation mail itself.
            conn.execute("INSERT OR IGNORE INTO subscribers (email, status, created_at, "
                         "updated_at) VALUES (?, 'pending', ?, ?)", (req.email, stamp, stamp))
            conn.execute(
                "INSERT INTO mail_queue (kind, email, language, ref, state, next_attempt_at, "
                "created_at, updated_at) VALUES ('confirm', ?, ?, ?, 'pending', ?, ?, ?)",
                (req.email, req.language, req.public_id, stamp, stamp, stamp))
    return outcome


def _subscribe_outcome(conn: Db, req: SubscribeRequest, limits: WebSettings,
                       now: datetime) -> str:
    hour_ago = _stamp(now - timedelta(hours=1))
    row = conn.execute("SELECT status FROM subscribers WHERE email = ?", (req.email,)).fetchone()
    if (row is not None and row[0] in NO_MAIL_STATUSES) or \
            _mailbox_suppressed(conn, req.mailbox):
        return "suppressed"
    by_client = conn.execute("SELECT count(*) FROM optin_requests WHERE client = ? AND "
                             "created_at > ?", (req.client, hour_ago)).fetchone()[0]
    if by_client >= limits.per_client_per_hour:
        return "client-limit"
    hours = limits.confirm_per_address_hours
    if hours and conn.execute(
            "SELECT 1 FROM optin_requests WHERE mailbox = ? AND outcome = 'queued' AND "
            "created_at > ? LIMIT 1", (req.mailbox, _stamp(now - timedelta(hours=hours)))
    ).fetchone():
        return "address-limit"
    in_all = conn.execute("SELECT count(*) FROM optin_requests WHERE outcome = 'queued' AND "
                          "created_at > ?", (hour_ago,)).fetchone()[0]
    if in_all >= limits.global_per_hour:
        return "global-limit"
    return "queued"


def _mailbox_suppressed(conn: Db, mailbox: str) -> bool:
    """True if another spelling of the same inbox (a.b+x@gmail.com for ab@gmail.com) bounced
    or complained: that inbox is dead, or its owner said no."""
    domain = mailbox.rpartition("@")[2]
    domains = ("gmail.com", "googlemail.com") if domain == "gmail.com" else (domain,)
    for name in domains:
        pattern = "%@" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for (email,) in conn.execute(
                "SELECT email FROM subscribers WHERE status IN ('bounced', 'complained') AND "
                "email LIKE ? ESCAPE '\\'", (pattern,)):
            if normalise_mailbox(email) == mailbox:
                return True
    return False


def get_optin_request(conn: Db, public_id: str,
                      not_before: datetime) -> OptinRequest | None:
    """A request whose confirmation mail was queued, made after not_before; else None."""
    row = conn.execute("SELECT email, name, language, created_at, confirmed_at FROM "
                       "optin_requests WHERE public_id = ? AND outcome = 'queued' AND "
                       "created_at >= ?", (public_id, _stamp(not_before))).fetchone()
    if row is None:
        return None
    return OptinRequest(row[0], row[1], row[2], datetime.fromisoformat(row[3]), bool(row[4]))


def confirm_optin_request(conn: Db, public_id: str, not_before: datetime,
                          now: datetime) -> str:
    """The owner's POST on a confirm link: apply that request's name and language and make
    the address active. Returns confirmed, or why not: invalid, suppressed (bounced or
    complained) or left (unsubscribed after the request was made)."""
    with transaction(conn):
        req = get_optin_request(conn, public_id, not_before)
        if req is None:
            return "invalid"
        sub = conn.execute("SELECT status, updated_at FROM subscribers WHERE email = ?",
                           (req.email,)).fetchone()
        if (sub is not None and sub[0] in NO_MAIL_STATUSES) or \
                _mailbox_suppressed(conn, normalise_mailbox(req.email)):
            return "suppressed"
        if sub is not None and sub[0] == "unsubscribed" and \
                datetime.fromisoformat(sub[1]) > req.created_at:
            return "left"
        if req.confirmed:  # a second POST: the first applied it; later changes stay
            return "confirmed"
        stamp, reason = _stamp(now), f"confirmed double opt-in {now:%Y-%m-%d}"
        conn.execute(
            "INSERT INTO subscribers (email, name, language, status, reason, created_at, "
            "updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?) ON CONFLICT (email) DO UPDATE "
            "SET name = excluded.name, language = excluded.language, status = 'active', "
            "reason = excluded.reason, updated_at = excluded.updated_at",
            (req.email, req.name, req.language, reason, stamp, stamp))
        # What the reader typed on the form is their own choice, as on the preferences page
        from newsletter.store.reader import mark_reader_set

        mark_reader_set(conn, conn.execute("SELECT id FROM subscribers WHERE email = ?",
                                           (req.email,)).fetchone()[0],
                        ("name", "language") if req.name else ("language",), stamp)
        conn.execute("UPDATE optin_requests SET confirmed_at = ? WHERE public_id = ?",
                     (stamp, public_id))
    return "confirmed"


def prune_web_records(conn: Db, requests_before: datetime,
                      mail_before: datetime) -> int:
    """Forget subscribe requests older than their links, the `pending` addresses nobody
    confirmed, and settled queue rows older than mail_before: all hold addresses that
    strangers may have typed. A bounce or complaint is kept (it is no longer `pending`)."""
    with transaction(conn):
        gone = conn.execute("DELETE FROM optin_requests WHERE created_at < ?",
                            (_stamp(requests_before),)).rowcount
        gone += conn.execute(
            "DELETE FROM subscribers WHERE status = 'pending' AND updated_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM optin_requests r WHERE r.email = subscribers.email) AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.subscriber_id = subscribers.id)",
            (_stamp(requests_before),)).rowcount
        return gone + conn.execute(
            "DELETE FROM mail_queue WHERE state NOT IN ('pending', 'sending', 'deferred') "
            "AND updated_at < ?", (_stamp(mail_before),)).rowcount


def claim_due_mail(conn: Db, owner: str, now: datetime, limit: int,
                   lease: timedelta) -> list[QueuedMail]:
    """Claim the next `limit` due rows for `owner`, committed before any is sent.

    In the same transaction: a claim whose lease ran out becomes `unknown` (the relay may
    have the message: never resent automatically), and mail to an address that bounced or
    complained since it was queued is `suppressed`. One UPDATE ... WHERE id IN (SELECT ...
    LIMIT n) claims the rows; on PostgreSQL the subquery takes FOR UPDATE SKIP LOCKED.
    """
    stamp = _stamp(now)
    with transaction(conn):
        conn.execute(
            "UPDATE mail_queue SET state = 'unknown', updated_at = ?, last_reply = 'claim "
            "expired (crash or kill during delivery); the message may have been sent' "
            "WHERE state = 'sending' AND claimed_at < ?", (stamp, _stamp(now - lease)))
        conn.execute(
            "UPDATE mail_queue SET state = 'suppressed', updated_at = ?, last_reply = "
            "'address is ' || (SELECT status FROM subscribers s WHERE s.email = "
            "mail_queue.email) WHERE state IN ('pending', 'deferred') AND EXISTS (SELECT 1 "
            "FROM subscribers s WHERE s.email = mail_queue.email AND s.status IN "
            "('bounced', 'complained'))", (stamp,))
        rows = conn.execute(
            "UPDATE mail_queue SET state = 'sending', attempts = attempts + 1, claimed_by = ?, "
            "claimed_at = ?, updated_at = ? WHERE id IN (SELECT id FROM mail_queue WHERE "
            "state IN ('pending', 'deferred') AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ?) "
            "RETURNING id, kind, email, language, ref, attempts, first_deferred_at",
            (owner, stamp, stamp, stamp, limit)).fetchall()
    return sorted((QueuedMail(r[0], r[1], r[2], r[3], r[4], r[5],
                              datetime.fromisoformat(r[6]) if r[6] else None) for r in rows),
                  key=lambda m: m.id)


def settle_mail(conn: Db, mail_id: int, owner: str, state: str, reply: str,
                now: datetime, *, retry_at: datetime | None = None,
                message_id: str = "") -> bool:
    """Record a claimed row's outcome; False if the claim was no longer ours (lease ran out)."""
    retry = _stamp(retry_at) if retry_at else None
    with transaction(conn):
        return conn.execute(
            "UPDATE mail_queue SET state = ?, last_reply = ?, updated_at = ?, "
            "next_attempt_at = coalesce(?, next_attempt_at), first_deferred_at = "
            "CASE WHEN ? = 'deferred' THEN coalesce(first_deferred_at, ?) "
            "ELSE first_deferred_at END, message_id = coalesce(nullif(?, ''), message_id) "
            "WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (state, reply[:500], _stamp(now), retry, state, _stamp(now), message_id, mail_id,
             owner)).rowcount == 1


def mail_queue_counts(conn: Db) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT state, count(*) FROM mail_queue GROUP BY state ORDER BY state")}


def get_subscriber_by_id(conn: Db, subscriber_id: int) -> Subscriber | None:
    row = conn.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?",
                       (subscriber_id,)).fetchone()
    return _subscriber(row) if row else None


def _source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def remember_translations(conn: Db, source_language: str,
                          target_language: str, issue: str,
                          pairs: Iterable[tuple[str, str]]) -> int:
    """Store (source, target) units; a later translation of the same source replaces it."""
    rows = [(source_language, target_language, _source_hash(src), src, trg, issue, now_iso())
            for src, trg in pairs]
    with transaction(conn):
        conn.executemany(
            "INSERT INTO translation_memory (source_language, target_language, source_hash, "
            "source_text, target_text, issue, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source_language, target_language, source_hash) DO UPDATE SET "
            "target_text = excluded.target_text, issue = excluded.issue, "
            "updated_at = excluded.updated_at", rows)
    return len(rows)


def recall_translations(conn: Db, source_language: str, target_language: str,
                        sources: Iterable[str]) -> dict[str, str]:
    """source -> target for each source the memory holds (compared in full, not by hash)."""
    found = {}
    for src in set(sources):
        row = conn.execute(
            "SELECT source_text, target_text FROM translation_memory WHERE source_language = ? "
            "AND target_language = ? AND source_hash = ?",
            (source_language, target_language, _source_hash(src))).fetchone()
        if row and row[0] == src:
            found[src] = row[1]
    return found
