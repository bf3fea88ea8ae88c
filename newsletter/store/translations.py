"""The translation memory: (source, target) units by language pair, kept from
`translate import` and offered again by `translate export`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from newsletter.store.db import Db
from newsletter.store.stamps import now_iso


def _source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def remember_translations(db: Db, source_language: str,
                          target_language: str, issue: str,
                          pairs: Iterable[tuple[str, str]]) -> int:
    """Store (source, target) units; a later translation of the same source replaces it."""
    rows = [(source_language, target_language, _source_hash(src), src, trg, issue, now_iso())
            for src, trg in pairs]
    with db.transaction():
        db.executemany(
            "INSERT INTO translation_memory (source_language, target_language, source_hash, "
            "source_text, target_text, issue, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source_language, target_language, source_hash) DO UPDATE SET "
            "target_text = excluded.target_text, issue = excluded.issue, "
            "updated_at = excluded.updated_at", rows)
    return len(rows)


def recall_translations(db: Db, source_language: str, target_language: str,
                        sources: Iterable[str]) -> dict[str, str]:
    """source -> target for each source the memory holds (compared in full, not by hash)."""
    found = {}
    for src in set(sources):
        row = db.execute(
            "SELECT source_text, target_text FROM translation_memory WHERE source_language = ? "
            "AND target_language = ? AND source_hash = ?",
            (source_language, target_language, _source_hash(src))).fetchone()
        if row and row[0] == src:
            found[src] = row[1]
    return found
