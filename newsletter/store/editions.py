"""SQL of frozen editions: the copy of each language edition an issue went out with (the
editions table), and the ledger-key convention that names a late edition's rows.

A late edition's deliveries are keyed "ISSUE+LANG": rows of their own beside the reader's row
of the issue, so the ledger keeps each of the two messages exactly once. Its edition is an
ordinary editions row of the issue, so every function here takes either key.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from newsletter.model import Edition
from newsletter.store.db import Db, Row

LATE_MARK = "+"


def base_issue(key: str) -> str:
    return key.split(LATE_MARK, 1)[0]


def late_key(issue: str, language: str) -> str:
    return f"{issue}{LATE_MARK}{language}"


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds: text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def is_frozen(db: Db, issue: str) -> bool:
    return db.one("SELECT 1 FROM editions WHERE issue = ? LIMIT 1", (issue,)) is not None


def has_edition(db: Db, issue: str, language: str) -> bool:
    """Whether this language (any case) is frozen for the issue already."""
    return db.one("SELECT 1 FROM editions WHERE issue = ? AND lower(language) = ?",
                  (issue, language.lower())) is not None


def frozen_languages(db: Db, key: str) -> list[str]:
    if LATE_MARK in key:  # a late edition's rows are all in its one language
        return [key.split(LATE_MARK, 1)[1]]
    return [r[0] for r in db.execute("SELECT language FROM editions WHERE issue = ?", (key,))]


def issues_frozen_since(db: Db, since: datetime) -> list[str]:
    """Issues whose first edition was frozen after `since`, in issue order."""
    return [r[0] for r in db.execute(
        "SELECT issue FROM editions GROUP BY issue HAVING min(frozen_at) > ? ORDER BY issue",
        (stamp(since),))]


def load_edition(db: Db, key: str, language: str) -> Edition:
    row = db.one("SELECT * FROM editions WHERE issue = ? AND language = ?",
                 (base_issue(key), language))
    if row is None:
        raise LookupError(f"no frozen edition for {key} ({language})")
    return edition_of(row)


def edition_of(row: Row) -> Edition:
    return Edition(issue=row["issue"], language=row["language"], subject=row["subject"],
                   preheader=row["preheader"], html=row["html"], text=row["text"],
                   fallback_name=row["fallback_name"])


def insert_editions(db: Db, editions: Iterable[Edition], frozen_at: str) -> None:
    """Inside the caller's transaction (store.ledger's freezes)."""
    db.executemany(
        "INSERT INTO editions (issue, language, subject, preheader, html, text, "
        "fallback_name, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.issue, e.language, e.subject, e.preheader, e.html, e.text, e.fallback_name,
          frozen_at) for e in editions])
