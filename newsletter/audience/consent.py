"""Consent: the keyed hash that remembers a forgotten reader, history events, and what a CSV
import may add (never a forgotten reader) and records (the file and line of each new one)."""

from __future__ import annotations

import functools
import getpass
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.audience.tokens import verification_secrets
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.model import Subscriber, normalise_mailbox
from newsletter.store import consent as store_consent
from newsletter.store import subscribers as store_subscribers
from newsletter.store.consent import ConsentEvent
from newsletter.store.db import Db
from newsletter.store.stamps import stamp  # as every table's times are written

# The fixed answers of the question after an unsubscribe (web/consent.py shows them translated)
REASONS = ("too-often", "not-relevant", "never-signed-up", "read-elsewhere", "other")


def forget_key(secret: str, list_id: str, email: str) -> str:
    """HMAC-SHA256 of the mailbox (lower-case, no +tag, Gmail's dots gone: every spelling of
    one inbox is one key) under a key derived from the secret. Without the secret, the
    database alone cannot tell whether someone's address is among the forgotten."""
    return hmac.new(_forget_hmac_key(secret, list_id), normalise_mailbox(email).encode(),
                    hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=8)
def _forget_hmac_key(secret: str, list_id: str) -> bytes:
    """The key derived from the secret: once per secret, not once per row of an import."""
    return hmac.new(secret.encode(), f"forgotten\0{list_id}".encode(), hashlib.sha256).digest()


def forget_keys(config: Config, email: str, now: datetime | None = None) -> list[str]:
    """The key under the current secret first, then under a previous one still accepted
    during a key rotation (a hash made before the rotation still matches then)."""
    return [forget_key(s, config.list_id, email) for s in verification_secrets(now)]


def operator() -> str:
    """Who ran a command, for the history ('operator (alice)')."""
    try:
        return f"operator ({getpass.getuser()})"
    except (OSError, KeyError):
        return "operator"


def event(email: str, action: str, source: str, detail: str, now: datetime) -> ConsentEvent:
    return ConsentEvent(email, stamp(now), action, source, detail)


@dataclass(frozen=True)
class ImportPlan:
    """A parsed CSV with forgotten readers taken out, and the history events of the rest."""

    subscribers: tuple[Subscriber, ...]
    lines: tuple[int, ...]
    skipped: tuple[str, ...]  # "file:line: ..." for each forgotten reader left out
    events: tuple[ConsentEvent, ...]  # for the addresses that are new to the list


def plan_import(conn: Db, config: Config, path: str,
                subscribers: Iterable[Subscriber], lines: Iterable[int],
                now: datetime, forgotten: dict[str, str] | None = None) -> ImportPlan:
    """Leave out every forgotten reader (any spelling of their inbox), and make a 'subscribed
    by CSV import, file:line' event for each address the list does not hold yet. The
    skipped lines name the file and line, not the address: the output may go to a log.
    forgotten: store_consent.all_forgotten, read once by a caller planning batch by batch."""
    if forgotten is None:
        forgotten = store_consent.all_forgotten(conn)
    keep: list[Subscriber] = []
    kept_lines: list[int] = []
    skipped: list[str] = []
    secrets = verification_secrets(now)
    for sub, line in zip(subscribers, lines, strict=True):
        on = next((forgotten[k] for k in (forget_key(s, config.list_id, sub.email)
                                          for s in secrets) if k in forgotten), "") \
            if forgotten else ""  # no one forgotten: no keyed hash to make
        if on:
            skipped.append(f"{path}:{line}: skipped: this reader asked to be forgotten ({on}); "
                           "only they can subscribe again, on the web form")
            continue
        keep.append(sub)
        kept_lines.append(line)
    known = store_consent.existing_addresses(conn, (s.email for s in keep))
    shown = relative(path, config.root)
    at = stamp(now)  # one moment for the file's events, formatted once
    events = tuple(ConsentEvent(s.email, at, "subscribed", "CSV import", f"{shown}:{n}")
                   for s, n in zip(keep, kept_lines, strict=True) if s.email.lower() not in known)
    return ImportPlan(tuple(keep), tuple(kept_lines), tuple(skipped), events)


def relative(path: str, root: Path) -> str:
    """The file as the project names it (subscribers/a.csv), whatever the working folder."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return path


def record_new(conn: Db, events: Iterable[ConsentEvent]) -> None:
    """Write the events of a plan once the import has added its addresses."""
    with conn.transaction():
        store_consent.record_events(conn, events)


def status_event(conn: Db, email: str, action: str, source: str, detail: str,
                 now: datetime) -> None:
    """One status change in the history (unsubscribe, bounce, complaint, operator's add),
    in the caller's transaction when there is one."""
    store_consent.record_events(conn, [event(email, action, source, detail, now)])


def add_with_consent(conn: Db, config: Config, sub: Subscriber) -> str:
    """`subscribers add`: refused for a forgotten reader; a new address gets its history
    event (the operator's command, and who ran it). Returns the status afterwards."""
    now = datetime.now(UTC)
    on = store_consent.forgotten_on(conn, forget_keys(config, sub.email, now))
    if on:
        raise InputError(f"{sub.email} asked to be forgotten ({on}); only they can subscribe "
                         "again, on the web form")
    new = store_subscribers.get_subscriber(conn, sub.email) is None
    status = store_subscribers.add_subscriber(conn, sub)
    if new:
        store_consent.record_events(conn, [event(sub.email, "subscribed", operator(),
                                                 "subscribers add", now)])
    return status


def removed(conn: Db, email: str) -> None:
    """`subscribers remove` done: its history event."""
    status_event(conn, email, "unsubscribed", operator(), "subscribers remove: removed by "
                 "an editor", datetime.now(UTC))
