"""Bounces and complaints: read DSNs, other bounces and ARF reports; suppress those addresses."""

from __future__ import annotations

import argparse
import email
import hashlib
import logging
import mailbox
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from functools import partial
from pathlib import Path

from flufl.bounce import all_failures

from newsletter import store
from newsletter.cli import config_of, open_store
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.tokens import verification_secrets, verify_token

# flufl.bounce logs each detector it runs at INFO (the CLI's level) and a traceback when one
# fails; a failure is reported here instead, as one warning naming the message.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL + 1)

_FINAL = ("unsubscribed", "bounced", "complained")  # never downgraded or re-activated
_STATUS_RE = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")  # RFC 3463 enhanced status code
_REPLY_RE = re.compile(r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*")  # "550 5.1.1 ..." in text
_CODES_RE = re.compile(r"^[245]\d\d[ -]|(?<!\S)[245]\d\d-?\s*[245]\.\d{1,3}\.\d{1,3}\s*")
_TOKEN_RE = re.compile(r"/unsubscribe/([\w-]+\.[\w-]+)")


@dataclass(frozen=True)
class Report:
    """What one message means. kind: hard, soft, complaint, ignored or unparseable."""

    kind: str
    addresses: tuple[str, ...] = ()  # lower case
    detail: str = ""


@dataclass(frozen=True)
class Change:
    email: str
    status: str  # bounced | complained
    why: str


@dataclass
class BounceRun:
    """The tally of one run, filled in as reports are processed."""

    read: int = 0
    new: int = 0
    already: int = 0
    bounced: int = 0
    complained: int = 0
    soft: int = 0
    ignored: int = 0
    changes: list[Change] = field(default_factory=list)

    def summary(self, seconds: float, *, dry_run: bool = False) -> str:
        head = "bounces (dry run, nothing changed)" if dry_run else "bounces"
        return (f"{head}: {self.read} report(s) read, {self.new} new, {self.already} already "
                f"processed; {self.bounced} bounced, {self.complained} complained, "
                f"{self.soft} soft recorded, {self.ignored} ignored in {seconds:.1f} s")


# --- reading a mailbox ---------------------------------------------------------------------

def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of each message; InputError at once if PATH is neither format."""
    if path.is_dir() and all((path / d).is_dir() for d in ("cur", "new", "tmp")):
        box: mailbox.Mailbox = mailbox.Maildir(path, factory=None, create=False)
        return _messages(box, path, sorted(box.keys()))  # Maildir names start with the time
    try:
        with path.open("rb") as f:
            is_mbox = f.read(5) in (b"", b"From ")  # mbox: empty, or a "From " line first
    except (FileNotFoundError, IsADirectoryError):
        is_mbox = False
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    if not is_mbox:
        raise InputError("not a Maildir (a folder with cur/, new/, tmp/) or an mbox file",
                         where=str(path))
    box = mailbox.mbox(path, factory=None, create=False)
    return _messages(box, path, box.keys())


def _messages(box: mailbox.Mailbox, path: Path, keys: list) -> Iterator[tuple[str, bytes]]:
    try:
        for key in keys:
            try:
                raw = box.get_bytes(key)
            except (KeyError, OSError):
                continue  # a mail client moved it since the listing; the next run sees it
            yield f"{path}: message {key}", raw
    finally:
        box.close()


def report_key(message: Message, raw: bytes) -> str:
    """The Message-ID, else a hash of the bytes: the same report always gets the same key."""
    mid = message.get("Message-ID")
    if isinstance(mid, str) and mid.strip():
        return "".join(mid.split())
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- classifying one message (pure) ----------------------------------------------------------

def classify(message: Message, *, read_token: Callable[[str], str | None] | None = None
             ) -> Report:
    """What a bounce, complaint or other reply says. Never raises: see kind 'unparseable'.

    read_token maps an unsubscribe token to its address (or None when not genuine); it finds
    the complainant when a feedback loop redacts the recipient.
    """
    try:
        if message.get_param("report-type", "", "content-type").lower() == "feedback-report":
            return _complaint(message, read_token)
        return _bounce(message)
    except Exception as exc:  # flufl.bounce's heuristics meet hostile input; any error is data
        return Report("unparseable", (), f"{type(exc).__name__}: {exc}")


def _bounce(message: Message) -> Report:
    dsn = _dsn_fields(message)
    if dsn and not any(action.startswith(("fail", "delay", "error")) or status[:1] in ("4", "5")
                       for action, status, _ in dsn.values()):
        # A success DSN (Action: delivered, relayed): flufl.bounce would go on to guess.
        return Report("ignored", (), "delivery report without failures")
    temporary, permanent = all_failures(message)
    found: dict[str, tuple[str, str]] = {}
    for raw, default in [(a, "soft") for a in temporary] + [(a, "hard") for a in permanent]:
        address = raw.decode("ascii").lower()
        _, status, diagnostic = dsn.get(address) or ("", *_text_reason(message))
        # RFC 3463: the status class decides, not the Action (a 4.x.x "failed" is an MTA
        # giving up on a temporary problem, such as Exchange's 4.4.7 QUEUE.Expired).
        kind = {"5": "hard", "4": "soft"}.get(status[:1], default)
        found[address] = (kind, _detail(status, diagnostic, kind))
    if not found:
        return Report("ignored", (), "not a bounce")
    kind = "hard" if any(k == "hard" for k, _ in found.values()) else "soft"
    chosen = sorted(a for a, (k, _) in found.items() if k == kind)
    return Report(kind, tuple(chosen), "; ".join(dict.fromkeys(found[a][1] for a in chosen)))


def _dsn_fields(message: Message) -> dict[str, tuple[str, str, str]]:
    """RFC 3464 per-recipient fields: address -> (action, status, diagnostic)."""
    fields = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload()[1:]:  # the first block is about the message
            status = _STATUS_RE.search(_field(block, "Status"))
            diagnostic = _field(block, "Diagnostic-Code")
            row = (_field(block, "Action").lower(), status.group(0) if status else "",
                   diagnostic.partition(";")[2].strip() or diagnostic)
            for name in ("Original-Recipient", "Final-Recipient"):
                address = _field(block, name).partition(";")[2].strip(" <>").lower()
                if address:
                    fields[address] = row
    return fields


def _text_reason(message: Message) -> tuple[str, str]:
    """(status, reply) from the first SMTP reply quoted in a non-standard bounce's text."""
    for part in message.walk():
        if part.get_content_maintype() == "message":
            break  # the returned original follows; its text says nothing about the failure
        if part.get_content_type() == "text/plain":
            text = (part.get_payload(decode=True) or b"").decode("ascii", "replace")
            if match := _REPLY_RE.search(text):
                return _STATUS_RE.search(match.group(0)).group(0), match.group(0).strip()
    return "", ""


def _detail(status: str, diagnostic: str, kind: str) -> str:
    """'5.1.1 <a@x>: Recipient address rejected: ...': reply codes folded into one status."""
    text = _CODES_RE.sub(" ", diagnostic).strip()
    text = text.removeprefix(status).strip() if status else text
    detail = " ".join(f"{status} {text}".split())
    return detail[:300] or ("permanent failure" if kind == "hard" else "temporary failure")


def _complaint(message: Message, read_token: Callable[[str], str | None] | None) -> Report:
    """RFC 5965 ARF: Original-Rcpt-To, else our unsubscribe token, else the original's To."""
    report = next((p.get_payload(0) for p in message.walk()
                   if p.get_content_type() == "message/feedback-report" and p.is_multipart()),
                  Message())
    feedback_type = _field(report, "Feedback-Type").lower()
    if feedback_type != "abuse":
        return Report("ignored", (), f"feedback-type {feedback_type or 'missing'}")
    original = _original_headers(message)
    token = _TOKEN_RE.search(_field(original, "List-Unsubscribe"))
    candidates = [
        _addresses(report.get_all("Original-Rcpt-To", [])),
        [read_token(token.group(1))] if token and read_token else [],
        _addresses(original.get_all("To", [])),
    ]
    found = next((c for c in candidates if any(c)), [])
    agent = (_field(report, "User-Agent") or _field(report, "Reporting-MTA")
             or _field(message, "From"))
    detail = f"abuse report from {agent}"
    if not found:
        return Report("ignored", (), f"{detail} names no recipient")
    return Report("complaint", tuple(sorted({a.lower() for a in found if a})), detail)


def _original_headers(message: Message) -> Message:
    """The complained-about message's headers: message/rfc822 or text/rfc822-headers."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            return part.get_payload(0)
        if part.get_content_type() == "text/rfc822-headers":
            return BytesHeaderParser().parsebytes(part.get_payload(decode=True) or b"")
    return Message()


def _addresses(values: list) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in values]) if "@" in addr]


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())  # unfolded; str() of an 8-bit Header


# --- effects: one transaction per report ---------------------------------------------------

def process_reports(conn: sqlite3.Connection, messages: Iterable[tuple[str, bytes]],
                    config: Config, *, now: datetime | None = None, dry_run: bool = False,
                    on_warning: Callable[[str], None] = lambda line: None) -> BounceRun:
    """Classify each new report and apply it with its processed_reports row, atomically."""
    now = now or datetime.now(UTC)
    read_token = partial(verify_token, verification_secrets(now), config.list_id)
    run = BounceRun()
    with _rolled_back(conn) if dry_run else nullcontext():
        for label, raw in messages:
            run.read += 1
            message = email.message_from_bytes(raw)
            key = report_key(message, raw)
            with _step(conn, dry_run):
                if conn.execute("SELECT 1 FROM processed_reports WHERE report_key = ?",
                                (key,)).fetchone():
                    run.already += 1
                    continue
                run.new += 1
                report = classify(message, read_token=read_token)
                if report.kind == "unparseable":
                    on_warning(f"{label}: cannot read it ({report.detail}); recorded as ignored")
                _record(conn, key, report, config, now, run)
    return run


def _step(conn: sqlite3.Connection, dry_run: bool) -> AbstractContextManager:
    return nullcontext() if dry_run else store.transaction(conn)


@contextmanager
def _rolled_back(conn: sqlite3.Connection) -> Iterator[None]:
    """--dry-run: do everything in one transaction and roll it back, so the tally is exact."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def _record(conn: sqlite3.Connection, key: str, report: Report, config: Config,
            now: datetime, run: BounceRun) -> None:
    if report.kind in ("ignored", "unparseable"):
        run.ignored += 1
        outcome = "ignored: " + ("unparseable" if report.kind == "unparseable" else report.detail)
    else:
        notes = [_apply(conn, key, address, report, config, now, run)
                 for address in report.addresses]
        outcome = f"{report.kind}: " + ", ".join(notes)
    conn.execute("INSERT INTO processed_reports (report_key, processed_at, outcome) "
                 "VALUES (?, ?, ?)", (key, _stamp(now), outcome[:1000]))


def _apply(conn: sqlite3.Connection, key: str, address: str, report: Report, config: Config,
           now: datetime, run: BounceRun) -> str:
    """One address's bounce event and status change; returns its note for the outcome."""
    sub = store.get_subscriber(conn, address)  # the column is COLLATE NOCASE
    if sub is None:
        return f"{address} (not a subscriber)"
    conn.execute("INSERT INTO bounce_events (email, kind, report_key, at) VALUES (?, ?, ?, ?)",
                 (sub.email, report.kind, key, _stamp(now)))
    run.soft += report.kind == "soft"
    if sub.status in _FINAL:
        return f"{sub.email} (already {sub.status})"
    date = now.astimezone(config.timezone).date().isoformat()
    days, limit = config.soft_bounce_window_days, config.soft_bounce_limit
    if report.kind == "soft":
        count = _recent_soft(conn, sub.email, now, days)
        if count < limit:
            return f"{sub.email} ({count} of {limit} in {days} days)"
        why = reason = f"{count} soft bounces in {days} days"
    else:
        label = "hard bounce" if report.kind == "hard" else "complaint"
        why, reason = f"{label}: {report.detail}", f"{label} {date}: {report.detail}"
    status = "complained" if report.kind == "complaint" else "bounced"
    conn.execute("UPDATE subscribers SET status = ?, reason = ?, updated_at = ? WHERE email = ?",
                 (status, reason, _stamp(now), sub.email))
    run.changes.append(Change(sub.email, status, why))
    run.bounced += status == "bounced"
    run.complained += status == "complained"
    return f"{sub.email} ({status})"


def _recent_soft(conn: sqlite3.Connection, address: str, now: datetime, days: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM bounce_events WHERE email = ? AND kind = 'soft' "
        "AND at > ? AND at <= ?",
        (address, _stamp(now - timedelta(days=days)), _stamp(now))).fetchone()[0]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")  # as store.now_iso()


# --- the command -----------------------------------------------------------------------------

def cmd_bounces(args: argparse.Namespace) -> int:
    from newsletter.commands import say, warn  # commands imports this module to register it

    started = time.monotonic()
    config = config_of(args)
    messages = read_mailbox(Path(args.path))  # a bad PATH fails before the database opens
    with open_store(config) as conn:
        run = process_reports(conn, messages, config, dry_run=args.dry_run, on_warning=warn)
    for change in run.changes:
        say(f"{change.status}  {change.email}  {change.why}")
    say(run.summary(time.monotonic() - started, dry_run=args.dry_run))
    return 0


def add_bounces_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("path", metavar="PATH",
                     help="a Maildir (folder with cur/, new/, tmp/) or an mbox file")
    cmd.add_argument("--dry-run", action="store_true",
                     help="report what would change; change nothing")
