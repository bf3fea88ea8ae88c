"""Shared by the consent, forget and welcome tests: a bounce for one address, a subscribe
and confirm through the real web app, and a look at every table of the database."""

from __future__ import annotations

import mailbox
import re
import sqlite3
from pathlib import Path

import httpx
from smtp_server import Script
from web_server import deliver_queued

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bounces"
PREFIX = "/newsletter"  # the path of base_url in the sample newsletter.toml
# A generous timeout: eight people share two cores while these tests run.
HTTP = httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))


def bounce_maildir(root: Path, address: str) -> Path:
    """A Maildir holding one Postfix 'user unknown' report about address."""
    data = (FIXTURES / "postfix_user_unknown.eml").read_bytes()
    data = re.sub(rb"(?i)ann\.lee@example\.com", address.encode(), data)
    box = mailbox.Maildir(root / "bounces", create=True)
    box.add(data)
    return root / "bounces"


def local(origin: str, public_url: str) -> str:
    """The same path on the test server instead of the public host."""
    return origin + re.sub(r"^https?://[^/]+", "", public_url)


def confirm_link(script: Script, email: str) -> str:
    message = [m for m in script.parsed(email) if "confirm" in m["Subject"].lower()
               or "/confirm/" in m.get_body(("plain",)).get_content()][-1]
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://\S+/confirm/\S+", text)[0]


def subscribe_and_confirm(origin: str, config: Path, script: Script, email: str, *,
                          language: str = "en", form_language: str = "en") -> httpx.Response:
    """Fill in the subscribe form (shown in form_language), then POST the mailed link."""
    reply = HTTP.post(f"{origin}{PREFIX}/subscribe?lang={form_language}",
                       data={"email": email, "name": "Nia Reader", "language": language})
    assert reply.status_code == 200
    deliver_queued(config)
    return HTTP.post(local(origin, confirm_link(script, email)))


def rows_naming(db: Path, needle: str) -> list[tuple[str, str, str]]:
    """(table, column, value) of every value in every table of the schema that contains
    the address needle (whole, in any case); the schema is read from sqlite_master, so a
    table added later is looked at too."""
    whole = re.compile(r"(?<![\w.+-])" + re.escape(needle) + r"(?![\w-])", re.IGNORECASE)
    found = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "subscribers" in tables and "deliveries" in tables
        for table in tables:
            columns = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
            for row in conn.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) \
                        else str(value)
                    if whole.search(text):
                        found.append((table, column, text[:80]))
    return found


def files_naming(root: Path, needle: str, *, skip: tuple[Path, ...] = ()) -> list[Path]:
    """Every file under root whose bytes hold the address needle, but those in skip."""
    return [p for p in root.rglob("*") if p.is_file() and p not in skip
            and names(p.read_bytes(), needle)]


def names(data: bytes, address: str) -> bool:
    """True if data holds the whole address (any case): not as part of a longer one."""
    return re.search(rb"(?<![\w.+-])" + re.escape(address.encode()) + rb"(?![\w-])", data,
                     re.IGNORECASE) is not None


def manage_links(messages: list, email: str) -> list[str]:
    """The /manage/ links in the data-link mails (parsed messages) sent to email."""
    found = []
    for message in messages:
        if email.lower() not in str(message["To"]).lower():
            continue
        text = message.get_body(("plain",)).get_content()
        found += re.findall(r"https://\S+/manage/\S+", text)
    return found


def outbox_messages(outbox: Path) -> list:
    """Every message in the Maildir outbox, parsed."""
    from email import message_from_bytes, policy

    return [message_from_bytes(m.as_bytes(), policy=policy.default)
            for m in mailbox.Maildir(outbox, create=False)]


def ask_for_data_link(origin: str, config: Path, preferences_token: str) -> httpx.Response:
    """Press the preferences page's data button, then run the queue worker once through."""
    page = HTTP.get(f"{origin}{PREFIX}/preferences/{preferences_token}")
    action = re.search(r'<form method="post" action="([^"]*/data-link)">', page.text)[1]
    reply = HTTP.post(origin + action)
    deliver_queued(config)
    return reply
