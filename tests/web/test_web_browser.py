"""Subscribe, then confirm, in headless Chromium against the real app on 127.0.0.1."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest_delivery import DeliveryProject
from smtp_server import Script, ScriptedServer
from web_server import deliver_queued, running_app

from newsletter.compose.browser import open_browser
from newsletter.i18n import gettext_for

pytestmark = pytest.mark.browser


def test_subscribe_then_confirm_in_a_real_browser(
        chromium: Path, delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, tmp_path: Path) -> None:
    email = "browser.reader@example.org"
    with running_app(delivery_project.config) as origin, open_browser() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(f"{origin}/newsletter/subscribe")
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Name").fill("Bea Browser")
        page.get_by_label("Language", exact=True).select_option("fr")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert "Check your inbox" in page.content()
        assert deliver_queued(delivery_project.config).sent == 1
        [confirmation] = smtp_script.parsed(email)
        text = confirmation.get_body(("plain",)).get_content()
        link = re.search(r"https://\S+/confirm/\S+", text)[0]
        page.goto(origin + urlsplit(link).path)
        fr = gettext_for("fr")  # the reader chose French: the confirm page speaks it
        assert "Bea Browser" in page.content()  # what the click will apply, shown first
        page.get_by_role("button", name=fr("Confirm my subscription")).click()
        page.wait_for_load_state()
        assert fr("You are subscribed") in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(tmp_path / "confirmed.png"))
    with sqlite3.connect(delivery_project.db) as conn:
        row = conn.execute("SELECT status, name, language FROM subscribers WHERE email = ?",
                           (email,)).fetchone()
    assert row == ("active", "Bea Browser", "fr")


def test_arabic_pages_are_right_to_left_in_a_real_browser(
        chromium: Path, delivery_project: DeliveryProject, tmp_path: Path) -> None:
    with running_app(delivery_project.config) as origin, open_browser() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(f"{origin}/newsletter/subscribe?lang=ar")
        layout = page.evaluate("""() => {
            const h1 = document.querySelector('h1');
            const range = document.createRange();
            range.selectNodeContents(h1);
            const text = range.getBoundingClientRect(), box = h1.getBoundingClientRect();
            return {dir: getComputedStyle(document.body).direction,
                    lang: document.documentElement.lang,
                    gapRight: box.right - text.right, gapLeft: text.left - box.left,
                    width: document.documentElement.scrollWidth};
        }""")
        page.screenshot(path=str(tmp_path / "subscribe-ar.png"), full_page=True)
    assert layout["dir"] == "rtl" and layout["lang"] == "ar"
    assert layout["gapRight"] < layout["gapLeft"]  # the title starts at the right edge
    assert layout["width"] <= 375
    assert (tmp_path / "subscribe-ar.png").stat().st_size > 0


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_confirmation_mail_fits_a_phone_and_follows_the_readers_direction(
        chromium: Path, delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, tmp_path: Path, language: str) -> None:
    import httpx

    email = f"{language}.reader@example.org"
    with running_app(delivery_project.config) as origin:
        httpx.post(f"{origin}/newsletter/subscribe", data={"email": email, "language": language})
    assert deliver_queued(delivery_project.config).sent == 1
    [confirmation] = smtp_script.parsed(email)
    html = confirmation.get_body(("html",)).get_content()
    with open_browser() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.route("**/*", lambda route: route.abort())  # the mail is self-contained
        page.set_content(html)
        layout = page.evaluate("""() => ({
            dir: getComputedStyle(document.querySelector('.block')).direction,
            width: document.documentElement.scrollWidth,
            link: document.querySelector('a[href*="/confirm/"]').getBoundingClientRect().width})""")
        page.screenshot(path=str(tmp_path / f"confirmation-{language}.png"), full_page=True)
    assert layout["dir"] == ("rtl" if language == "ar" else "ltr")
    assert layout["width"] <= 375 and layout["link"] > 0
