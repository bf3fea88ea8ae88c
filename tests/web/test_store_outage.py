"""`newsletter serve` when its database fails under it (a server restarting, a disk gone
bad): the reader gets the error page in their language as 503 with Retry-After, a provider's
webhook a 503 it retries, and the log one line per request, never a traceback. Real HTTP;
the failure is a table gone from the real database (either engine)."""

from __future__ import annotations

import logging

import httpx
import pytest
from conftest_delivery import DeliveryProject
from test_web import PREFIX, token_for
from web_server import running_app

from newsletter.config import load_config
from newsletter.store.connect import database_url, open_store


def break_store(project: DeliveryProject) -> None:
    with open_store(database_url(load_config(project.config))) as db, db.transaction():
        db.execute("ALTER TABLE subscribers RENAME TO subscribers_gone")


def test_a_failed_database_is_a_503_page_and_one_log_line(
        subscribed: DeliveryProject, caplog: pytest.LogCaptureFixture) -> None:
    reader = subscribed.addresses[0]
    with running_app(subscribed.config) as origin:
        link = f"{origin}{PREFIX}/unsubscribe/{token_for(reader)}"
        assert httpx.get(link).status_code == 200  # the page works while the database does
        break_store(subscribed)
        with caplog.at_level(logging.INFO):
            page = httpx.get(link, headers={"Accept-Language": "fr-CH, en;q=0.5"})
            evil = httpx.get(f"{origin}{PREFIX}/unsubscribe/{token_for(reader)}%0Aforged")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert 'lang="fr"' in page.text and "Traceback" not in page.text
    assert "subscribers" not in page.text  # the database's words are the log's, not the page's
    assert evil.status_code in (400, 404, 503)
    lines = [r.getMessage() for r in caplog.records if "answered 503" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines), lines
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
