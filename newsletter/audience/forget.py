"""A reader's own data: the JSON export, and erasure (`subscribers forget`, the preferences
page's delete): personal data gone from the database and the program's own files, a keyed
hash kept so that no later import adds the address again."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

from newsletter.audience.consent import forget_keys, relative, stamp
from newsletter.config import Config
from newsletter.model import normalise_mailbox
from newsletter.store import consent as store_consent
from newsletter.store import forget as store_forget
from newsletter.store.db import Db
from newsletter.store.forget import Erased

_GMAIL = ("gmail.com", "googlemail.com")
_MAX_HEADER = 256 * 1024  # a header longer than this is not one the transport wrote


@dataclass(frozen=True)
class ForgetReport:
    known: bool  # the address (some spelling of it) was in the database
    erased: Erased
    outbox_messages: int  # messages to the reader removed from the outbox Maildir
    still_in: tuple[str, ...]  # "file:line" of the editors' CSV files that still list it


def same_mailbox(conn: Db, email: str) -> set[str]:
    """email and every other spelling of its inbox that the database holds."""
    mailbox_ = normalise_mailbox(email)
    domain = mailbox_.rpartition("@")[2]
    found = store_forget.spellings(conn, _GMAIL if domain in _GMAIL else (domain,))
    return {email} | {e for e in found if e and normalise_mailbox(e) == mailbox_}


def forget_reader(config: Config, conn: Db, email: str,
                  now: datetime) -> ForgetReport:
    """Erase a reader; idempotent (a second call finds nothing and keeps the one hash)."""
    spellings = same_mailbox(conn, email)
    known = bool(store_consent.existing_addresses(conn, spellings))
    erased = store_forget.erase(conn, spellings, normalise_mailbox(email),
                                 forget_keys(config, email, now)[0],
                                 now.astimezone(config.timezone).date().isoformat())
    removed = _clean_outbox(config.root / "outbox", spellings)
    return ForgetReport(known or erased.subscribers > 0, erased, removed,
                        _csv_mentions(config.subscriber_files, spellings, config.root))


def _clean_outbox(path: Path, spellings: set[str]) -> int:
    """Delete the Maildir transport's copies of mail to the reader: that folder is the
    program's record of what it sent (the embedded default transport). Only each file's
    header is read: an outbox of a year of issues is gigabytes."""
    wanted, removed = {s.lower() for s in spellings}, 0
    for folder in (path / "new", path / "cur"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for file in folder.iterdir():
            if not file.is_file() or file.is_symlink():
                continue
            try:
                head = _header_of(file)
            except OSError:
                continue  # removed meanwhile, or unreadable: nothing of ours to judge
            to = {addr.lower() for _, addr in getaddresses(head.get_all("To", []))}
            if to & wanted:
                file.unlink(missing_ok=True)
                removed += 1
    return removed


def _header_of(file: Path) -> Message:
    with file.open("rb") as f:
        data = b""
        while b"\n\n" not in data and len(data) < _MAX_HEADER:
            chunk = f.read(4096)
            if not chunk:
                break
            data += chunk
    return BytesHeaderParser(policy=compat32).parsebytes(data.split(b"\n\n", 1)[0])


def _csv_mentions(files: tuple[Path, ...], spellings: set[str],
                  root: Path) -> tuple[str, ...]:
    """Where the editors' own files still list the reader: theirs to edit, not ours (an
    import skips the line meanwhile)."""
    wanted = {s.lower() for s in spellings}
    found = []
    for path in files:
        try:
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            low = line.lower()
            if any(w in low for w in wanted):
                found.append(f"{relative(str(path), root)}:{number}")
    return tuple(found)


def reader_export(config: Config, conn: Db, email: str,
                  now: datetime) -> dict[str, object] | None:
    """Everything the list holds about one reader, for the reader: their fields, consent
    history, deliveries (issue, edition, state, when) and bounces. None if not a subscriber."""
    record = store_consent.subscriber_record(conn, email)
    if record is None:
        return None
    sub_id = int(str(record.pop("id")))
    record["tags"] = [t for t in str(record["tags"]).split(";") if t]
    history = []
    for e in store_consent.history(conn, str(record["email"])):
        entry = {"at": e.at, "action": e.action, "source": e.source, "detail": e.detail}
        version = re.search(r"text version ([0-9a-f]+)", e.detail)
        if e.source == "web form" and version:  # the words the reader agreed to
            entry["form_text"] = store_consent.consent_text(conn, version[1])
        history.append(entry)
    return {
        "newsletter": config.name,
        "exported_at": stamp(now),
        "subscriber": record,
        "consent_history": history,
        "deliveries": store_consent.deliveries_of(conn, sub_id),
        "bounces": store_consent.bounces_of(conn, str(record["email"])),
    }


def export_json(data: dict[str, object]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
