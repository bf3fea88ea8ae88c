"""Each part takes the smaller of quoted-printable and base64: the Arabic edition stays small."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from newsletter.compose.message import Personal, build_message, make_envelope, message_id

sys.path.insert(0, str(Path(__file__).parent.parent))
from test_layout import sample_html, sample_text  # noqa: E402

from newsletter.model import Edition

WHEN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
UNSUB = "https://ipbusiness.example.org/newsletter/unsubscribe/tok.en"


def edition(language: str) -> Edition:
    return Edition(issue="2026-11", language=language, subject="Subject", preheader="",
                   html=sample_html(language), text=sample_text(language), fallback_name="reader")


def message(language: str, name: str = "Layla Haddad") -> bytes:
    env = make_envelope("IP for Business", "IP for Business", "newsletter@example.org",
                        "team@example.org", "ip.example.org")
    who = Personal("layla@example.com", name, UNSUB,
                   message_id("2026-11", "layla@example.com", "example.org"))
    return build_message(edition(language), env, who, WHEN)


def parts(raw: bytes) -> dict[str, tuple[str, str]]:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert not parsed.defects
    found = {}
    for part in parsed.walk():
        if part.get_content_maintype() == "text":
            assert not part.defects
            found[part.get_content_subtype()] = (part["Content-Transfer-Encoding"],
                                                 part.get_content())
    return found


@pytest.mark.parametrize("language, html_encoding", [("ar", "base64"), ("en", "quoted-printable"),
                                                    ("fr", "quoted-printable")])
def test_each_part_uses_the_smaller_encoding(language, html_encoding):
    raw = message(language)
    found = parts(raw)
    assert found["html"][0] == html_encoding
    assert "Layla Haddad" in found["html"][1] and UNSUB in found["html"][1]
    assert "Layla Haddad" in found["plain"][1]


def test_the_arabic_edition_is_smaller_on_the_wire_than_in_quoted_printable():
    import binascii

    html = sample_html("ar").encode("utf-8")
    qp_size = len(binascii.b2a_qp(html, istext=True))
    raw = message("ar")
    html_part = raw.split(b"Content-Type: text/html; charset=utf-8", 1)[1].split(b"\r\n--=_nl_")[0]
    base64_size = -(-len(html.replace(b"\n", b"\r\n")) // 3) * 4 * 78 // 76
    assert len(html_part) < qp_size - 3000  # 3 KB less than QP of the same HTML
    assert abs(len(html_part) - base64_size) < 400  # about what base64 of it must take
    assert all(len(line) <= 76 for line in html_part.split(b"\r\n"))


def test_base64_text_is_crlf_canonical_and_decodes_to_the_edition():
    found = parts(message("ar"))
    text = found["plain"][1].replace("\r\n", "\n")
    assert text.replace("Layla Haddad", "__NL_NAME__").replace(UNSUB, "__NL_UNSUBSCRIBE_URL__") \
        .replace(UNSUB.replace("/unsubscribe/", "/preferences/"), "__NL_PREFERENCES_URL__") \
        .strip() == sample_text("ar").replace("__NL_EDITION_NOTE__", "").strip()
