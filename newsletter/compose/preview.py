"""`newsletter build`: the preview (HTML, text, a sample .eml, screenshots) in build/ISSUE/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter import safe_files
from newsletter.compose.browser import BrowserUnavailable, open_browser, screenshot
from newsletter.compose.message import Envelope, Personal, build_message, message_id
from newsletter.compose.personalise import Recipient, personalise_html, personalise_text
from newsletter.model import Edition
from newsletter.netguard import NetGuard

SAMPLE_EMAIL = "reader@example.com"


@dataclass(frozen=True)
class PreviewFiles:
    directory: Path
    files: tuple[Path, ...]
    note: str  # why screenshots are missing, if they are


def sample_parts(edition: Edition, unsubscribe_url: str) -> tuple[str, str]:
    """The HTML and text parts as the sample reader (no name) gets them."""
    sample = Recipient("", unsubscribe_url)
    return (personalise_html(edition.html, sample, edition.fallback_name),
            personalise_text(edition.text, sample, edition.fallback_name))


def write_preview(edition: Edition, envelope: Envelope, unsubscribe_url: str, out: Path, *,
                  screenshots: bool = True,
                  allow_hosts: frozenset[str] = frozenset()) -> PreviewFiles:
    """Everything an editor needs to judge the issue before it is sent. Files are written
    without following a link planted in OUT; screenshots load images only from hosts the
    network guard allows (public addresses, and [network] allow_hosts)."""
    out.mkdir(parents=True, exist_ok=True)
    html_file, text_file, eml_file = out / "email.html", out / "email.txt", out / "sample.eml"
    html, text = sample_parts(edition, unsubscribe_url)
    safe_files.write_text(html_file, html, root=out)
    safe_files.write_text(text_file, text, root=out)
    who = Personal(SAMPLE_EMAIL, "", unsubscribe_url,
                   message_id(edition.issue, SAMPLE_EMAIL, envelope.domain))
    safe_files.write_bytes(eml_file, build_message(edition, envelope, who, datetime.now(UTC)),
                           root=out)
    files = [html_file, text_file, eml_file]
    note = ""
    if screenshots:
        try:
            with open_browser() as browser:
                for name, width in (("desktop.png", 600), ("phone.png", 375)):
                    screenshot(browser, html_file, out / name, width,
                               guard=NetGuard(allow_hosts))
                    files.append(out / name)
        except BrowserUnavailable as exc:
            note = f"screenshots skipped: {exc}"
    return PreviewFiles(out, tuple(files), note)
