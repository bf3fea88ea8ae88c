"""The SQL of the archive: the frozen editions, as the static site and `serve` show them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from newsletter.model import Edition
from newsletter.store.db import Db

_COLUMNS = "issue, language, subject, preheader, html, text, fallback_name, frozen_at"


@dataclass(frozen=True)
class FrozenEdition:
    """One edition whose send has begun, and when it was frozen."""

    edition: Edition
    frozen_at: datetime


def frozen_editions(db: Db) -> list[FrozenEdition]:
    """Every frozen edition, in no particular order (the archive sorts them itself)."""
    return [FrozenEdition(Edition(*(row[k] for k in range(7))),
                          datetime.fromisoformat(row[7]))
            for row in db.all(f"SELECT {_COLUMNS} FROM editions")]
