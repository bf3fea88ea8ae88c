"""The subscribe form's requests: the limits that decide whether one may send mail, the
confirmation that applies it, and the pruning of what strangers may have typed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter.config import WebSettings
from newsletter.model import normalise_mailbox
from newsletter.store.db import Db
from newsletter.store.reader import mark_reader_set
from newsletter.store.stamps import stamp as iso

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


def record_subscribe_request(db: Db, req: SubscribeRequest, limits: WebSettings,
                             now: datetime) -> str:
    """One transaction: decide whether this request may send mail, record it, and queue the
    confirmation. Returns the outcome: queued, suppressed, client-limit, address-limit or
    global-limit."""
    stamp = iso(now)
    with db.transaction():
        outcome = _subscribe_outcome(db, req, limits, now)
        queued = outcome == "queued"
        db.execute(
            "INSERT INTO optin_requests (public_id, email, mailbox, name, language, client, "
            "outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (req.public_id, req.email, req.mailbox, req.name if queued else "",
             req.language if queued else "", req.client, outcome, stamp))
        if queued:
            # A pending row (no name, no language: those wait for the confirmation) lets the
            # return path record a bounce or complaint about the confirmation mail itself.
            db.execute("INSERT INTO subscribers (email, status, created_at, updated_at) "
                       "VALUES (?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                       (req.email, stamp, stamp))
            db.execute(
                "INSERT INTO mail_queue (kind, email, language, ref, state, next_attempt_at, "
                "created_at, updated_at) VALUES ('confirm', ?, ?, ?, 'pending', ?, ?, ?)",
                (req.email, req.language, req.public_id, stamp, stamp, stamp))
    return outcome


def _subscribe_outcome(db: Db, req: SubscribeRequest, limits: WebSettings,
                       now: datetime) -> str:
    hour_ago = iso(now - timedelta(hours=1))
    row = db.execute("SELECT status FROM subscribers WHERE email = ?", (req.email,)).fetchone()
    if (row is not None and row[0] in NO_MAIL_STATUSES) or \
            _mailbox_suppressed(db, req.mailbox):
        return "suppressed"
    by_client = db.execute("SELECT count(*) FROM optin_requests WHERE client = ? AND "
                           "created_at > ?", (req.client, hour_ago)).fetchone()[0]
    if by_client >= limits.per_client_per_hour:
        return "client-limit"
    hours = limits.confirm_per_address_hours
    if hours and db.execute(
            "SELECT 1 FROM optin_requests WHERE mailbox = ? AND outcome = 'queued' AND "
            "created_at > ? LIMIT 1", (req.mailbox, iso(now - timedelta(hours=hours)))
    ).fetchone():
        return "address-limit"
    in_all = db.execute("SELECT count(*) FROM optin_requests WHERE outcome = 'queued' AND "
                        "created_at > ?", (hour_ago,)).fetchone()[0]
    if in_all >= limits.global_per_hour:
        return "global-limit"
    return "queued"


def _mailbox_suppressed(db: Db, mailbox: str) -> bool:
    """True if another spelling of the same inbox (a.b+x@gmail.com for ab@gmail.com) bounced
    or complained: that inbox is dead, or its owner said no."""
    domain = mailbox.rpartition("@")[2]
    domains = ("gmail.com", "googlemail.com") if domain == "gmail.com" else (domain,)
    for name in domains:
        pattern = "%@" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for (email,) in db.execute(
                "SELECT email FROM subscribers WHERE status IN ('bounced', 'complained') AND "
                "email LIKE ? ESCAPE '\\'", (pattern,)):
            if normalise_mailbox(email) == mailbox:
                return True
    return False


def get_optin_request(db: Db, public_id: str,
                      not_before: datetime) -> OptinRequest | None:
    """A request whose confirmation mail was queued, made after not_before; else None."""
    row = db.execute("SELECT email, name, language, created_at, confirmed_at FROM "
                     "optin_requests WHERE public_id = ? AND outcome = 'queued' AND "
                     "created_at >= ?", (public_id, iso(not_before))).fetchone()
    if row is None:
        return None
    return OptinRequest(row[0], row[1], row[2], datetime.fromisoformat(row[3]), bool(row[4]))


def confirm_optin_request(db: Db, public_id: str, not_before: datetime,
                          now: datetime) -> str:
    """The owner's POST on a confirm link: apply that request's name and language and make
    the address active. Returns confirmed, or why not: invalid, suppressed (bounced or
    complained) or left (unsubscribed after the request was made)."""
    with db.transaction():
        req = get_optin_request(db, public_id, not_before)
        if req is None:
            return "invalid"
        sub = db.execute("SELECT status, updated_at FROM subscribers WHERE email = ?",
                         (req.email,)).fetchone()
        if (sub is not None and sub[0] in NO_MAIL_STATUSES) or \
                _mailbox_suppressed(db, normalise_mailbox(req.email)):
            return "suppressed"
        if sub is not None and sub[0] == "unsubscribed" and \
                datetime.fromisoformat(sub[1]) > req.created_at:
            return "left"
        if req.confirmed:  # a second POST: the first applied it; later changes stay
            return "confirmed"
        stamp, reason = iso(now), f"confirmed double opt-in {now:%Y-%m-%d}"
        db.execute(
            "INSERT INTO subscribers (email, name, language, status, reason, created_at, "
            "updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?) ON CONFLICT (email) DO UPDATE "
            "SET name = excluded.name, language = excluded.language, status = 'active', "
            "reason = excluded.reason, updated_at = excluded.updated_at",
            (req.email, req.name, req.language, reason, stamp, stamp))
        # What the reader typed on the form is their own choice, as on the preferences page
        mark_reader_set(db, db.execute("SELECT id FROM subscribers WHERE email = ?",
                                       (req.email,)).fetchone()[0],
                        ("name", "language") if req.name else ("language",), stamp)
        db.execute("UPDATE optin_requests SET confirmed_at = ? WHERE public_id = ?",
                   (stamp, public_id))
    return "confirmed"


def prune_web_records(db: Db, requests_before: datetime,
                      mail_before: datetime) -> int:
    """Forget subscribe requests older than their links, the `pending` addresses nobody
    confirmed, and settled queue rows older than mail_before: all hold addresses that
    strangers may have typed. A bounce or complaint is kept (it is no longer `pending`)."""
    with db.transaction():
        gone = db.execute("DELETE FROM optin_requests WHERE created_at < ?",
                          (iso(requests_before),)).rowcount
        gone += db.execute(
            "DELETE FROM subscribers WHERE status = 'pending' AND updated_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM optin_requests r WHERE r.email = subscribers.email) AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.subscriber_id = subscribers.id)",
            (iso(requests_before),)).rowcount
        return gone + db.execute(
            "DELETE FROM mail_queue WHERE state NOT IN ('pending', 'sending', 'deferred') "
            "AND updated_at < ?", (iso(mail_before),)).rowcount
