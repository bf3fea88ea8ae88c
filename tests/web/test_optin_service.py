"""The opt-in service without the web: subscribe and confirm, one-click unsubscribe and the
profile edit, called as the routes call them (no Flask, a real store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from conftest_delivery import DeliveryProject

from newsletter.audience.tokens import make_token
from newsletter.config import Config, load_config
from newsletter.model import Subscriber
from newsletter.store import consent as store_consent
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store
from newsletter.store.db import Db
from newsletter.web import optin_service as service
from newsletter.web.optin import FormProblem, SubscribeForm, confirm_token

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BLANK_FORM = "<html><style>p {}</style><body><p>Subscribe to  the letter</p></body></html>"


@pytest.fixture
def config(delivery_project: DeliveryProject) -> Config:
    return load_config(delivery_project.config)


@pytest.fixture
def db(delivery_project: DeliveryProject) -> Iterator[Db]:
    handle = open_store(delivery_project.db)  # on PostgreSQL: the test's database
    try:
        yield handle
    finally:
        handle.close()


def subscribe(db: Db, config: Config, email: str) -> str:
    """The confirm token of a fresh, queued subscribe request."""
    form = SubscribeForm(email, "Ada", "fr")
    assert service.subscribe(db, config, form, "192.0.2.1", "en", BLANK_FORM, NOW) == "queued"
    public_id = store_consent.latest_queued_request(db, email)
    assert public_id
    return confirm_token("test-secret", config.list_id, public_id)


def test_subscribe_then_confirm_makes_the_reader_active_once(db: Db, config: Config) -> None:
    token = subscribe(db, config, "ada@example.org")
    found = service.pending_request(db, config, token, NOW)
    assert found is not None
    public_id, req = found
    assert (req.email, req.name, req.language) == ("ada@example.org", "Ada", "fr")
    assert store_consent.form_of(db, public_id)[0] == "en"  # the page's language, recorded
    assert service.confirm(db, config, public_id, req, NOW) in ("subscribed", "welcomed")
    sub = store_subscribers.get_subscriber(db, "ada@example.org")
    assert sub is not None and (sub.status, sub.language) == ("active", "fr")
    _, again = service.pending_request(db, config, token, NOW) or ("", req)
    assert again.confirmed
    assert service.confirm(db, config, public_id, again, NOW) == "subscribed"  # nothing more


def test_a_forged_confirm_token_finds_nothing(db: Db, config: Config) -> None:
    token = subscribe(db, config, "ada@example.org")
    assert service.pending_request(db, config, token[:-2] + "xx", NOW) is None
    assert service.pending_request(db, config, "garbage", NOW) is None


def test_form_text_keeps_only_the_words() -> None:
    assert service.form_text(BLANK_FORM) == "Subscribe to the letter"


def test_unsubscribe_changes_an_active_reader_once(db: Db, config: Config) -> None:
    store_subscribers.add_subscriber(db, Subscriber("bo@example.org", "Bo", "en"))
    email, sub = service.reader_of(db, config, make_token("test-secret", config.list_id,
                                                          "bo@example.org"), NOW)
    assert email == "bo@example.org" and sub is not None
    assert service.unsubscribe(db, sub, NOW) is True
    _, after = service.reader_of(db, config, make_token("test-secret", config.list_id,
                                                        "bo@example.org"), NOW)
    assert after is not None and after.status == "unsubscribed"
    assert service.unsubscribe(db, after, NOW) is False
    assert service.unsubscribe(db, None, NOW) is False


def test_a_token_that_is_not_ours_names_no_one(db: Db, config: Config) -> None:
    assert service.reader_of(db, config, make_token("other-secret", config.list_id,
                                                    "bo@example.org"), NOW) == (None, None)


def test_save_profile_checks_the_name_then_the_language(db: Db, config: Config) -> None:
    store_subscribers.add_subscriber(db, Subscriber("cy@example.org", "Cy", "en"))
    sub = store_subscribers.get_subscriber(db, "cy@example.org")
    assert sub is not None
    saved = service.save_profile(db, "en", sub, "Cyrille", "es")
    assert (saved.name, saved.language) == ("Cyrille", "es")
    with pytest.raises(FormProblem) as problem:
        service.save_profile(db, "en", sub, "=?utf-8?q?x?=", "xx")
    assert problem.value.field == "name"
    with pytest.raises(FormProblem) as problem:
        service.save_profile(db, "en", sub, "Cy", "xx")
    assert problem.value.field == "language"
