"""Whether the database answers: `serve`'s /healthz."""

from __future__ import annotations

from newsletter.store.db import Db


def ping(db: Db) -> None:
    """A trivial query; raises StoreError when the database cannot answer it."""
    db.execute("SELECT 1")
