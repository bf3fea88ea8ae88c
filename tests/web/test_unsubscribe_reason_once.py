"""The "why?" question comes once per unsubscribe: repeating the one-click POST for a reader
who has already left gets no new ticket, so the reason totals cannot be stuffed."""

from __future__ import annotations

import re
import sqlite3

from conftest_delivery import DeliveryProject
from consent_helpers import HTTP, PREFIX
from web_server import running_app

from newsletter.audience.tokens import make_token

LIST_ID = "ip-for-business.ipbusiness.example.org"


def test_only_the_post_that_unsubscribes_asks_why(delivery_project: DeliveryProject) -> None:
    assert delivery_project.cli("subscribers", "import",
                                str(delivery_project.root / "subscribers" / "sample.csv")) == 0
    token = make_token("test-secret", LIST_ID, "reader001@example.com")
    tickets = []
    with running_app(delivery_project.config) as origin:
        for _ in range(5):
            page = HTTP.post(f"{origin}{PREFIX}/unsubscribe/{token}",
                             data={"List-Unsubscribe": "One-Click"})
            assert page.status_code == 200
            tickets += re.findall(r'name="ticket" value="([^"]+)"', page.text)
        assert len(tickets) == 1, tickets
        for _ in range(5):
            HTTP.post(f"{origin}{PREFIX}/unsubscribe-reason",
                      data={"reason": "too-often", "ticket": tickets[0]})
    with sqlite3.connect(delivery_project.db) as conn:
        assert conn.execute("SELECT * FROM unsubscribe_reasons").fetchall() == [("too-often", 1)]
