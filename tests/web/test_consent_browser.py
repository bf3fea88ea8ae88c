"""The reader's data and the "why?" question in headless Chromium against the real app:
the forms work without JavaScript under the pages' CSP, and fit a phone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject
from consent_helpers import PREFIX, local, manage_links, outbox_messages
from web_server import deliver_queued, running_app

from newsletter.audience.tokens import make_token
from newsletter.compose.browser import open_browser

pytestmark = pytest.mark.browser
LIST_ID = "ip-for-business.ipbusiness.example.org"


@pytest.fixture
def reader(delivery_project: DeliveryProject) -> DeliveryProject:
    assert delivery_project.cli("subscribers", "add", "bea@example.org", "--name", "Bea") == 0
    return delivery_project


def preferences(origin: str) -> str:
    return f"{origin}{PREFIX}/preferences/{make_token('test-secret', LIST_ID, 'bea@example.org')}"


def test_download_then_delete_from_the_mailed_data_link(
        chromium: Path, reader: DeliveryProject, tmp_path: Path) -> None:
    with running_app(reader.config) as origin, open_browser() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800}, accept_downloads=True)
        page.goto(preferences(origin))
        page.get_by_role("button", name="Email me a link to download or delete my data").click()
        page.wait_for_load_state()
        assert "we have sent it a link" in page.content()
        deliver_queued(reader.config)
        [link] = manage_links(outbox_messages(reader.root / "outbox"), "bea@example.org")
        page.goto(local(origin, link))
        with page.expect_download() as download:
            page.get_by_role("button", name="Download my data").click()
        data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert data["subscriber"]["email"] == "bea@example.org"
        assert download.value.suggested_filename == "newsletter-data.json"
        page.get_by_role("button", name="Delete my data", exact=True).click()
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        with sqlite3.connect(reader.db) as conn:  # asking changed nothing
            assert conn.execute("SELECT count(*) FROM subscribers").fetchone() == (1,)
        page.get_by_role("button", name="Delete my data for good").click()
        page.wait_for_load_state()
        assert "Your data is deleted" in page.content()
        page.screenshot(path=str(tmp_path / "deleted.png"))
    with sqlite3.connect(reader.db) as conn:
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone() == (0,)


def test_unsubscribe_then_answer_why_by_clicking_a_label(
        chromium: Path, reader: DeliveryProject) -> None:
    with running_app(reader.config) as origin, open_browser() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(preferences(origin))
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert "You are unsubscribed" in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.get_by_text("I get too many emails").click()  # the label picks its radio
        page.get_by_role("button", name="Send my answer").click()
        page.wait_for_load_state()
        assert "Thank you for telling us." in page.content()
    with sqlite3.connect(reader.db) as conn:
        assert conn.execute("SELECT * FROM unsubscribe_reasons").fetchall() == [("too-often", 1)]
        assert conn.execute("SELECT status FROM subscribers").fetchone() == ("unsubscribed",)
