"""store.archive and store.health on a real SQLite file: the frozen editions come back as
FrozenEdition values (no rows), and ping answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsletter.model import Edition
from newsletter.store.archive import FrozenEdition, frozen_editions
from newsletter.store.connect import open_store
from newsletter.store.db import Db
from newsletter.store.health import ping

EN = Edition("2026-11", "en", "News", "In short", "<p>Hi</p>", "Hi", "reader")
FR = Edition("2026-11", "fr", "Nouvelles", "", "<p>Salut</p>", "Salut", "lecteur")
FROZEN = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    with open_store(tmp_path / "t.db") as handle:
        yield handle


def test_no_edition_is_an_empty_list(db: Db) -> None:
    assert frozen_editions(db) == []


def test_every_frozen_edition_comes_back_whole(db: Db) -> None:
    with db.transaction():
        db.executemany(
            "INSERT INTO editions (issue, language, subject, preheader, html, text, "
            "fallback_name, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.issue, e.language, e.subject, e.preheader, e.html, e.text, e.fallback_name,
              FROZEN.isoformat()) for e in (EN, FR)])
    found = sorted(frozen_editions(db), key=lambda f: f.edition.language)
    assert found == [FrozenEdition(EN, FROZEN), FrozenEdition(FR, FROZEN)]


def test_ping_answers(db: Db) -> None:
    ping(db)  # raises StoreError when the database cannot answer
