"""Attacks from outside over real HTTP that the other web tests do not cover: a hostile
page posting a reader's forms from the reader's own browser (CSRF), token re-encodings."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from conftest_delivery import DeliveryProject
from test_web import ONE_CLICK, PREFIX, status_of, token_for
from web_server import running_app

CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


def name_of(project: DeliveryProject, email: str) -> str:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT name FROM subscribers WHERE email = ?", (email,)).fetchone()[0]


@pytest.mark.parametrize("headers", [CROSS_SITE, {"Origin": "https://evil.example"},
                                     {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}])
def test_a_cross_site_post_of_a_readers_forms_changes_nothing(
        subscribed: DeliveryProject, headers: dict[str, str]) -> None:
    reader = subscribed.addresses[0]
    token = token_for(reader)
    with running_app(subscribed.config) as origin:
        prefs = httpx.post(f"{origin}{PREFIX}/preferences/{token}", data={"name": "pwned"},
                           headers=headers)
        forget = httpx.post(f"{origin}{PREFIX}/forget/{token}", data={"confirm": "1"},
                            headers=headers)
        signup = httpx.post(f"{origin}{PREFIX}/subscribe", data={"email": "v@example.com"},
                            headers=headers)
    # The sign-up form may live on the publisher's own site: taken, and only a confirmation
    # mail goes out (double opt-in), nobody is subscribed.
    assert (prefs.status_code, forget.status_code, signup.status_code) == (403, 403, 200)
    assert name_of(subscribed, reader) != "pwned" and status_of(subscribed, reader) == "active"
    assert status_of(subscribed, "v@example.com") == "pending"  # until its link is followed


def test_same_origin_posts_and_rfc8058_one_click_from_anywhere_still_work(
        subscribed: DeliveryProject) -> None:
    first, second = subscribed.addresses[:2]
    with running_app(subscribed.config) as origin:
        host = origin.removeprefix("http://")
        own = httpx.post(f"{origin}{PREFIX}/preferences/{token_for(first)}",
                         data={"name": "Ana"},
                         headers={"Origin": origin, "Host": host, "Sec-Fetch-Site": "same-origin"})
        # RFC 8058 section 3.1: the one-click POST needs nothing beyond the URL and its body,
        # and mail providers send it from wherever they are.
        one_click = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token_for(second)}",
                               data=ONE_CLICK, headers=CROSS_SITE)
    assert own.status_code == 200 and name_of(subscribed, first) == "Ana"
    assert one_click.status_code == 200 and status_of(subscribed, second) == "unsubscribed"


@pytest.mark.parametrize("mangle", [lambda t: t[:-1], lambda t: t + "=", lambda t: t + "==",
                                    lambda t: t.swapcase(), lambda t: t + "%00",
                                    lambda t: t + "%0d%0aX-Injected:%201"])
def test_re_encoded_tokens_unsubscribe_nobody(subscribed: DeliveryProject, mangle) -> None:  # noqa: ANN001
    with running_app(subscribed.config) as origin:
        token = mangle(token_for(subscribed.addresses[0]))
        reply = httpx.post(f"{origin}{PREFIX}/unsubscribe/{token}", data=ONE_CLICK)
    assert reply.status_code == 400 and "X-Injected" not in reply.headers
    assert {status_of(subscribed, a) for a in subscribed.addresses} == {"active"}
