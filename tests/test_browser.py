"""The built email in headless Chromium: no sideways scrolling on a phone, real screenshots."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser



def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which the PNG format puts first."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def test_build_writes_desktop_and_phone_screenshots(project, tmp_path, chromium):
    project.copy_sample_issue()
    out = tmp_path / "preview"
    result = project.cli("build", "2026-11", "--out", str(out))
    assert result.code == 0, result.err
    assert "screenshots skipped" not in result.err
    assert f"5 files in {out}" in result.out
    desktop_width, desktop_height = png_size(out / "desktop.png")
    phone_width, phone_height = png_size(out / "phone.png")
    assert desktop_width == 600
    assert phone_width == 375
    assert desktop_height > 800 and phone_height > desktop_height  # full page; text reflows


def test_built_email_has_no_horizontal_overflow_on_a_phone(project, tmp_path, chromium):
    from newsletter.browser import horizontal_overflow, open_browser

    project.copy_sample_issue()
    out = tmp_path / "preview"
    assert project.cli("build", "2026-11", "--no-screenshots", "--out", str(out)).code == 0
    with open_browser() as browser:
        assert horizontal_overflow(browser, out / "email.html", 375) == 0
        assert horizontal_overflow(browser, out / "email.html", 600) == 0


def test_overflow_check_detects_a_page_wider_than_the_phone(tmp_path, chromium):
    from newsletter.browser import horizontal_overflow, open_browser

    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><html><body style="margin:0">'
                    '<table width="600" style="width:600px"><tr><td>x</td></tr></table>'
                    "</body></html>", encoding="utf-8")
    with open_browser() as browser:
        assert horizontal_overflow(browser, page, 375) == 225
