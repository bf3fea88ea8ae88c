"""Headless Chromium (Debian's package, driven by Playwright): screenshots and layout checks."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from newsletter import __version__
from newsletter.errors import NewsletterError
from newsletter.netguard import NetGuard, Refused, guarded_client, open_url

MAX_REDIRECTS = 5
RESOURCE_TIMEOUT_SECONDS = 5.0
RESOURCE_MAX_BYTES = 5 * 1024 * 1024
PAGE_BUDGET_SECONDS = 20.0  # for all of a page's images: page.goto gives up at 30 s

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


class _Subresources:
    """Fetches what the page asks for itself, through the guard, and hands Chromium the bytes:
    Chromium opens no connection of its own, so no loopback, private or metadata address is
    reached from a feed's <img>, and a DNS answer that changes after the check gains nothing."""

    def __init__(self, page_url: str, guard: NetGuard) -> None:
        self.page_url, self.guard = page_url, guard
        self.deadline = time.monotonic() + PAGE_BUDGET_SECONDS
        self.client = guarded_client(guard, RESOURCE_TIMEOUT_SECONDS)
        self.refused: list[str] = []

    def handle(self, route: Any) -> None:
        url = route.request.url
        if url == self.page_url or url.startswith(("data:", "about:")):
            route.continue_()
            return
        fetched = self._get(url) if route.request.method == "GET" else None
        if fetched is None:
            self.refused.append(url)
            route.abort("blockedbyclient")
            return
        status, content_type, body = fetched
        route.fulfill(status=status, headers={"Content-Type": content_type}, body=body)

    def _get(self, url: str) -> tuple[int, str, bytes] | None:
        if time.monotonic() > self.deadline:  # a slow image host must not hold up the build
            return None
        try:
            with open_url(self.client, self.guard, url, {"User-Agent": f"newsletter/{__version__}"},
                          max_redirects=MAX_REDIRECTS) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > RESOURCE_MAX_BYTES or time.monotonic() > self.deadline:
                        return None
                return (response.status_code,
                        response.headers.get("Content-Type", "application/octet-stream"),
                        bytes(body))
        except (Refused, httpx.HTTPError):
            return None


@contextmanager
def _page(browser: Any, page_file: Path, width: int, guard: NetGuard | None) -> Iterator[Any]:
    """A page showing PAGE_FILE whose every other request goes through the guard. Email
    clients run no scripts, so neither does this page."""
    page = browser.new_page(viewport={"width": width, "height": 800}, java_script_enabled=False)
    url = page_file.resolve().as_uri()
    resources = _Subresources(url, guard or NetGuard())
    try:
        page.route("**/*", resources.handle)
        page.goto(url)
        yield page
    finally:
        page.close()
        resources.client.close()


def screenshot(browser: Any, page_file: Path, png: Path, width: int, *,
               guard: NetGuard | None = None) -> None:
    """A full-page PNG of a local HTML file at a viewport width (600 desktop, 375 phone).
    Images load only from hosts `guard` allows (by default: public addresses)."""
    with _page(browser, page_file, width, guard) as page:
        page.screenshot(path=str(png), full_page=True)


def horizontal_overflow(browser: Any, page_file: Path, width: int, *,
                        guard: NetGuard | None = None) -> int:
    """How many CSS pixels the page is wider than the viewport (0 is good)."""
    with _page(browser, page_file, width, guard) as page:
        return int(page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")) - width
