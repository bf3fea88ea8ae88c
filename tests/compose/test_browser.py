"""The built email in headless Chromium: no sideways scrolling on a phone, real screenshots."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from newsletter.netguard import NetGuard

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
    from newsletter.compose.browser import horizontal_overflow, open_browser

    project.copy_sample_issue()
    out = tmp_path / "preview"
    assert project.cli("build", "2026-11", "--no-screenshots", "--out", str(out)).code == 0
    with open_browser() as browser:
        assert horizontal_overflow(browser, out / "email.html", 375) == 0
        assert horizontal_overflow(browser, out / "email.html", 600) == 0


def test_overflow_check_detects_a_page_wider_than_the_phone(tmp_path, chromium):
    from newsletter.compose.browser import horizontal_overflow, open_browser

    page = tmp_path / "wide.html"
    page.write_text('<!DOCTYPE html><html><body style="margin:0">'
                    '<table width="600" style="width:600px"><tr><td>x</td></tr></table>'
                    "</body></html>", encoding="utf-8")
    with open_browser() as browser:
        assert horizontal_overflow(browser, page, 375) == 225


# --- the screenshot browser reaches only what the guard allows ---------------------------------


def make_png(width: int, height: int) -> bytes:
    """A grey RGB PNG: signature, IHDR, one IDAT, IEND (RFC 2083)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80" * 3 * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def test_images_load_from_an_allowed_host_and_never_from_loopback(feed_server, tmp_path,
                                                                  chromium):
    from newsletter.compose.browser import horizontal_overflow, open_browser, screenshot

    port = feed_server.httpd.server_address[1]
    feed_server.route("/wide.png", make_png(900, 10), headers={"Content-Type": "image/png"})
    feed_server.route("/x.png", make_png(900, 10), headers={"Content-Type": "image/png"})
    feed_server.route("/hop.png", status=302, headers={"Location": feed_server.url("/y.png")})
    page = tmp_path / "email.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<img src="http://images.example.test:{port}/wide.png" alt="allowed">'
        f'<img src="{feed_server.url("/x.png")}" alt="loopback">'
        f'<img src="http://images.example.test:{port}/hop.png" alt="redirected to loopback">'
        "</body></html>", encoding="utf-8")
    guard = NetGuard(frozenset({"images.example.test"}), resolve=_test_dns)
    with open_browser() as browser:
        # The 900 px image loaded (through the guard) and widens the page past the phone.
        assert horizontal_overflow(browser, page, 375, guard=guard) == 900 - 375
        screenshot(browser, page, tmp_path / "shot.png", 600, guard=guard)
    assert png_size(tmp_path / "shot.png")[0] == 900  # full page: the wide image included
    assert len(feed_server.requests_for("/wide.png")) == 2
    assert feed_server.requests_for("/x.png") == []
    assert len(feed_server.requests_for("/hop.png")) == 2
    assert feed_server.requests_for("/y.png") == []


def _test_dns(host: str, port: int) -> list[str]:
    """images.example.test is the feed server; no other name may be looked up."""
    if host != "images.example.test":
        raise OSError(f"no test answer for {host}")
    return ["127.0.0.1"]


def test_build_never_requests_a_loopback_image_in_a_feed_summary(project, tmp_path, chromium):
    project.copy_sample_issue()
    tracker = project.server.route("/tracker.png", make_png(1, 1),
                                   headers={"Content-Type": "image/png"})
    snapshot = project.issues / "2026-11.items.yaml"
    text = snapshot.read_text(encoding="utf-8")
    snapshot.write_text(text.replace(
        "Sessions run every second Thursday;",
        f'<img src="{tracker}" alt="Clinic"> Sessions run every second Thursday;'),
        encoding="utf-8")
    config = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(re.sub(r"(?m)^allow_hosts = .*\n", "", config),
                                   encoding="utf-8")
    out = tmp_path / "preview"
    result = project.cli("build", "2026-11", "--out", str(out))
    assert result.code == 0, result.err
    assert tracker in (out / "email.html").read_text(encoding="utf-8")  # it is in the email
    assert png_size(out / "desktop.png")[0] == 600
    assert project.server.requests_for("/tracker.png") == []  # but the browser never asked
