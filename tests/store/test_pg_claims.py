"""Claims when several senders share one PostgreSQL database: FOR UPDATE SKIP LOCKED hands
each due row to exactly one connection (SQLite keeps BEGIN IMMEDIATE); and whether the
configured store exists, asked without creating one (`check` on either engine)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.store import claims
from newsletter.store.connect import open_store, store_exists
from newsletter.store.db import Db

NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
ISSUE = "2026-11"


def test_store_exists_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    assert not store_exists(path) and not store_exists(f"sqlite:///{path}")
    assert not path.exists()
    open_store(path).close()
    assert store_exists(path) and store_exists(f"sqlite:///{path}")
    # A server's database is the operator's to make: any server URL counts as there.
    assert store_exists("postgresql://nl@db.example:5432/newsletter")
