"""store/reader.merge_rows reads the known subscribers of a batch at once and inserts the new
ones together: the result is what one statement a row gave, in any mix of case, with an
address twice in one call, and with new and known addresses interleaved (ids in order)."""

from __future__ import annotations

from pathlib import Path

from newsletter.model import Subscriber
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.reader import merge_subscribers


def test_a_batch_of_new_known_and_repeated_addresses_merges_as_row_by_row(
        tmp_path: Path) -> None:
    with open_store(tmp_path / "t.db") as db:
        merge_subscribers(db, [Subscriber("Known@Example.org", "K", "en", ("a",))])
        done = merge_subscribers(db, [
            Subscriber("new1@example.org", "N1", "fr"),
            Subscriber("known@example.org", "K2", "en", ("b",)),  # another case: the same
            Subscriber("new2@example.org", "N2", "es"),
            Subscriber("NEW1@example.org", "N1 again", "fr"),  # twice in one call
        ])
        assert (done.added, done.updated) == (2, 2)
        assert [(s.id, s.email, s.name, s.tags) for s in store_subscribers.iter_subscribers(db)] \
            == [(1, "Known@Example.org", "K2", ("b",)), (2, "new1@example.org", "N1 again", ()),
                (3, "new2@example.org", "N2", ())]
