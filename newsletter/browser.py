"""Headless Chromium (Debian's package, driven by Playwright): screenshots and layout checks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError

# Without these, Chromium keeps trying to reach Google's services, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class BrowserUnavailable(NewsletterError):
    """No Chromium or no Playwright: previews go on without screenshots."""


def chromium_path() -> str:
    path = os.environ.get("NEWSLETTER_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        raise BrowserUnavailable("Chromium not found: install it with `apt-get install chromium` "
                                 "(or set NEWSLETTER_CHROMIUM)")
    return path


@contextmanager
def open_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable("Playwright is not installed: pip install 'newsletter[browser]'") \
            from exc
    executable = chromium_path()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as exc:
            raise BrowserUnavailable(f"Chromium did not start: {exc.message.splitlines()[0]}") \
                from exc
        try:
            yield browser
        finally:
            browser.close()


def screenshot(browser: Any, page_file: Path, png: Path, width: int) -> None:
    """A full-page PNG of a local HTML file at a viewport width (600 desktop, 375 phone)."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.goto(page_file.resolve().as_uri())
        page.screenshot(path=str(png), full_page=True)
    finally:
        page.close()


def horizontal_overflow(browser: Any, page_file: Path, width: int) -> int:
    """How many CSS pixels the page is wider than the viewport (0 is good)."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    try:
        page.goto(page_file.resolve().as_uri())
        return int(page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")) - width
    finally:
        page.close()
