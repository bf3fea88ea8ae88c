"""`subscribers show / forget / reasons`: a reader's consent history and data, erasure, and
the unsubscribe-reason totals (called from subscriber_commands.cmd_subscribers)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from newsletter.audience.consent import REASONS, forget_keys
from newsletter.audience.forget import export_json, forget_reader, reader_export
from newsletter.audience.subscribers import normalise_address
from newsletter.audience.tokens import secret_from_env
from newsletter.cli.context import open_store
from newsletter.cli.output import say, warn
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.store import consent as store_consent
from newsletter.store.db import Db

ACTIONS = ("show", "forget", "reasons")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.action == "reasons":
        with open_store(config) as conn:
            totals = store_consent.reason_totals(conn)
        for reason in REASONS:
            say(f"{reason:16} {totals.get(reason, 0)}")
        say(f"unsubscribe reasons: {sum(totals.values())} answer(s) (totals only: no answer "
            "is linked to a reader)")
        return 0
    try:
        email = normalise_address(args.address)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    now = datetime.now(UTC)
    with open_store(config) as conn:
        if args.action == "forget":
            return _forget(config, conn, email, now)
        data = reader_export(config, conn, email, now)
        if data is None:
            on = store_consent.forgotten_on(conn, forget_keys(config, email, now))
            if on:
                say(f"{email}: forgotten on {on} (only a keyed hash is kept: imports skip it)")
                return 0
            raise InputError(f"{email} is not on the list")
    if args.json:
        print(export_json(data), end="")
        return 0
    _show(config, data)
    return 0


def _local(config: Config, iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{moment.astimezone(config.timezone):%Y-%m-%d %H:%M %Z}".strip()


def _show(config: Config, data: dict) -> None:  # type: ignore[type-arg]
    sub = data["subscriber"]
    tags = ";".join(sub["tags"]) or "none"
    reason = f" ({sub['reason']})" if sub["reason"] else ""
    say(f"{sub['email']}: {sub['status']}{reason}; name {sub['name']!r}, language "
        f"{sub['language'] or '?'}, tags {tags}; on the list since "
        f"{_local(config, sub['created_at'])}")
    say("consent history:")
    for e in data["consent_history"]:
        say(f"  {_local(config, e['at']):22} {e['action']:13} {e['source']:18} {e['detail']}")
    if not data["consent_history"]:
        say("  none recorded (added before the history was kept)")
    deliveries = data["deliveries"]
    say("deliveries: " + (", ".join(f"{d['issue']} ({d['language']}) {d['state']} "
                                    f"{d['updated_at'][:10]}" for d in deliveries) or "none"))
    bounces = data["bounces"]
    say("bounces: " + (", ".join(f"{b['kind']} {b['at'][:10]}"
                                 + (f" ({b['reason']})" if b["reason"] else "")
                                 for b in bounces) or "none"))


def _forget(config: Config, conn: Db, email: str, now: datetime) -> int:
    if not secret_from_env()[1]:
        warn("NEWSLETTER_SECRET is not set: the forgotten mark is keyed by the development "
             "secret, and imports under the real one will not recognise it")
    report = forget_reader(config, conn, email, now)
    erased = report.erased
    if report.known:
        say(f"{email}: forgotten: {erased.subscribers} subscriber row(s), "
            f"{erased.other_rows} other row(s) and {report.outbox_messages} outbox message(s) "
            f"deleted; {erased.deliveries} delivery row(s) and {erased.bounce_events} bounce "
            "event(s) kept as counts only; a keyed hash stops imports adding it again")
    else:
        say(f"{email}: not on the list; recorded as forgotten, so no import adds it")
    for where in report.still_in:
        say(f"{where}: still lists this address: delete it from your file (imports skip it)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    show = sub.add_parser("show", help="one subscriber: fields, consent history, deliveries")
    show.add_argument("address", metavar="ADDR")
    show.add_argument("--json", action="store_true",
                      help="everything held about the reader, as JSON (their data export)")
    forget = sub.add_parser("forget", help="erase a reader's personal data (keeps a keyed "
                                           "hash so no import adds them again)")
    forget.add_argument("address", metavar="ADDR")
    sub.add_parser("reasons", help="totals of the answers to 'why did you unsubscribe?'")
