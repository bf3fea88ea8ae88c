"""TRANSITIONAL (layers refactor, issue 12): the old store module's names, now defined in
store/schema.py, connect.py, subscribers.py, optin.py, mailqueue.py, feeds.py,
translations.py and stamps.py. Import from those; this file goes once no caller is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsletter.model import CachedFeed, Subscriber  # noqa: F401
from newsletter.store.connect import connect_sqlite
from newsletter.store.db import Db
from newsletter.store.feeds import get_feed_cache, put_feed_cache, sent_item_ids  # noqa: F401
from newsletter.store.mailqueue import (  # noqa: F401
    QueuedMail,
    claim_due_mail,
    mail_queue_counts,
    settle_mail,
)
from newsletter.store.optin import (  # noqa: F401
    NO_MAIL_STATUSES,
    OptinRequest,
    SubscribeRequest,
    confirm_optin_request,
    get_optin_request,
    prune_web_records,
    record_subscribe_request,
)
from newsletter.store.schema import _MIGRATIONS, SCHEMA_VERSION  # noqa: F401
from newsletter.store.stamps import now_iso  # noqa: F401
from newsletter.store.subscribers import (  # noqa: F401
    add_subscriber,
    get_subscriber,
    get_subscriber_by_id,
    imported_digest,
    iter_subscribers,
    record_import,
    set_status,
    subscriber_counts,
    subscriber_languages,
    update_profile,
    upsert_subscribers,
)
from newsletter.store.translations import recall_translations, remember_translations  # noqa: F401


def connect(path: Path) -> Db:
    return connect_sqlite(Path(path))


@contextmanager
def transaction(conn: Db, *, immediate: bool = True) -> Iterator[None]:
    with conn.transaction(immediate=immediate):
        yield
