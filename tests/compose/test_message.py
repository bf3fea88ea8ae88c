"""One subscriber's message: MIME structure, safe headers, line lengths, personalisation."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header, make_header
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.compose.message import Envelope, Personal, build_message, make_envelope, message_id
from newsletter.compose.personalise import (
    NAME,
    UNSUBSCRIBE_URL,
    Recipient,
    personalise_html,
    personalise_text,
    unknown_placeholders,
)
from newsletter.errors import InputError
from newsletter.model import Edition

ISSUE = "2026-12"
SENDER_DOMAIN = "ipbusiness.example.org"
LIST_ID = "ip-for-business.ipbusiness.example.org"
UNSUB = ("https://ipbusiness.example.org/newsletter/unsubscribe/"
         "em9lLm11ZWxsZXJAZXhhbXBsZS5vcmc.265VmQBFgXCUDe9H78_cnR_X")
WHEN = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
HTML = (f'<html><body><p>Dear {NAME},</p><p>News.</p>'
        f'<p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p></body></html>')
TEXT = f"Dear {NAME},\n\nNews.\n\nUnsubscribe: {UNSUBSCRIBE_URL}\n"
HEADER_NAMES = ["From", "To", "Date", "Message-ID", "List-Unsubscribe", "Subject", "Reply-To",
                "List-Id", "List-Unsubscribe-Post", "Content-Language", "MIME-Version",
                "Content-Type"]


def edition(subject: str = "IP news for December", html: str = HTML, text: str = TEXT) -> Edition:
    return Edition(issue=ISSUE, language="en", subject=subject, preheader="Patents, trademarks",
                   html=html, text=text, fallback_name="reader")


@pytest.fixture(scope="module")
def env() -> Envelope:
    return make_envelope("IP for Business", "IP for Business", f"newsletter@{SENDER_DOMAIN}",
                         f"sme-team@{SENDER_DOMAIN}", LIST_ID)


def personal(name: str = "Zoë Müller", address: str = "zoe.mueller@example.org",
             url: str = UNSUB) -> Personal:
    return Personal(address, name, url, message_id(ISSUE, address, SENDER_DOMAIN))


def build(env: Envelope, name: str = "Zoë Müller", *, subject: str | None = None,
          ed: Edition | None = None, url: str = UNSUB,
          address: str = "zoe.mueller@example.org") -> bytes:
    return build_message(ed or edition(), env, personal(name, address, url), WHEN,
                         subject=subject)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def all_defects(msg: email.message.EmailMessage) -> list:
    found = []
    for part in msg.walk():
        found += [(part.get_content_type(), d) for d in part.defects]
        found += [(k, d) for k in part for d in part[k].defects]
    return found


def raw_header(data: bytes, name: str) -> str:
    """The header's value as written: folded lines joined, nothing decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n(?=[ \t])", "", head)
    values = [line.split(": ", 1)[1] for line in unfolded.split("\r\n")
              if line.lower().startswith(name.lower() + ":")]
    assert len(values) == 1, values
    return values[0]


def rfc2047_display_name(to_value: str) -> str:
    """The display name a mail client reads from a raw To value.

    RFC 2047 section 6.2: whitespace between adjacent encoded words is ignored. CPython 3.11's
    address parser keeps it (gh-128110), so for names long enough to need several encoded
    words this decodes the phrase with email.header, which follows the RFC.
    """
    if not to_value.endswith(">"):
        return ""
    if to_value.startswith('"'):
        return email.utils.parseaddr(to_value)[0]  # a quoted-string, unescaped
    return str(make_header(decode_header(to_value.rsplit(" <", 1)[0])))


def bodies(msg: email.message.EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return text, html


# --- structure and bodies -----------------------------------------------------------------------


def test_the_message_parses_back_without_defects_as_text_then_html_in_utf8(env):
    msg = parse(build(env))

    assert all_defects(msg) == []
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert msg["MIME-Version"] == "1.0"
    assert msg["Content-Language"] == "en"


def test_the_bodies_carry_the_recipients_name_and_unsubscribe_url(env):
    text, html = bodies(parse(build(env, "Zoë Müller")))

    assert "Dear Zoë Müller," in text
    assert f"Unsubscribe: {UNSUB}" in text
    assert "Dear Zoë Müller," in html
    assert f'<a href="{UNSUB}">' in html
    assert "__NL_" not in text + html


def test_the_name_is_html_escaped_in_html_and_verbatim_in_text(env):
    name = 'Tom & "Jerry" <x>'

    text, html = bodies(parse(build(env, name)))

    assert f"Dear {name}," in text
    assert "Dear Tom &amp; &quot;Jerry&quot; &lt;x&gt;," in html
    assert "<x>" not in html


def test_no_name_falls_back_to_the_editions_greeting(env):
    text, html = bodies(parse(build(env, "")))

    assert "Dear reader," in text
    assert "Dear reader," in html


# --- headers ------------------------------------------------------------------------------------


def test_from_reply_to_and_list_id_come_from_the_envelope(env):
    msg = parse(build(env))

    assert msg["From"].addresses[0].display_name == "IP for Business"
    assert msg["From"].addresses[0].addr_spec == f"newsletter@{SENDER_DOMAIN}"
    assert msg["Reply-To"].addresses[0].addr_spec == f"sme-team@{SENDER_DOMAIN}"
    assert raw_header(build(env), "List-Id") == f"IP for Business <{LIST_ID}>"


@pytest.mark.parametrize("name", [
    "Zoë Müller",
    "محمد بن عبد الله",  # Arabic, right to left
    "王小明",
    "Doe, Jane",
    'Tom & "Jerry" <x>',
    "O'Brien (Sales) <boss@example.org>",
    "",
])
def test_the_to_header_holds_exactly_one_address_and_the_display_name(env, name):
    data = build(env, name)
    msg = parse(data)

    (to,) = msg["To"].addresses
    assert to.addr_spec == "zoe.mueller@example.org"
    assert to.display_name == name
    assert rfc2047_display_name(raw_header(data, "To")) == name
    assert all_defects(msg) == []


def test_a_long_non_ascii_name_is_folded_and_decodes_to_the_same_name(env):
    name = "Zoë Müller-Lüdenscheidt, Geschäftsführerin der Bücher & Söhne GmbH " * 3
    data = build(env, name)

    after_to = data.split(b"\r\nTo: ", 1)[1].split(b"\r\n")
    to_lines = [after_to[0]]
    for line in after_to[1:]:
        if not line.startswith(b" "):
            break
        to_lines.append(line)
    assert len(to_lines) > 1
    assert all(len(line) <= 78 for line in to_lines[:-1])  # the last one ends with the address
    assert rfc2047_display_name(raw_header(data, "To")) == name
    assert len(parse(data)["To"].addresses) == 1


@pytest.mark.parametrize("subject", [
    "IP news for December",
    "Propriété intellectuelle : les nouveautés de décembre",
    "知识产权月刊 — 十二月",
    "الملكية الفكرية للشركات الصغيرة والمتوسطة",
    "Patents & trademarks: \"what's new\" (December) <2026>",
])
def test_the_subject_round_trips(env, subject):
    msg = parse(build(env, subject=subject))

    assert msg["Subject"] == subject
    assert all_defects(msg) == []


def test_the_subject_defaults_to_the_editions_and_can_be_overridden(env):
    assert parse(build(env))["Subject"] == "IP news for December"
    assert parse(build(env, subject="[TEST] IP news"))["Subject"] == "[TEST] IP news"


def test_the_date_is_the_moment_given(env):
    assert parse(build(env))["Date"].datetime == WHEN


def test_message_id_is_deterministic_per_issue_and_address_on_the_senders_domain(env):
    def mid(address: str, issue: str = ISSUE) -> str:
        return parse(build_message(edition(), env, Personal(
            address, "", UNSUB, message_id(issue, address, env.domain)), WHEN))["Message-ID"]

    first = mid("zoe@example.org")

    assert first == mid("zoe@example.org")
    assert first == mid("Zoe@Example.org")  # the same subscriber, however spelt
    assert first != mid("ann@example.org")
    assert first != mid("zoe@example.org", "2027-01")
    assert re.fullmatch(rf"<{ISSUE}\.[0-9a-f]{{32}}@{re.escape(SENDER_DOMAIN)}>", first)


def test_list_unsubscribe_carries_the_exact_url_on_one_physical_line(env):
    long_url = UNSUB + "?campaign=" + "december-2026-" * 8
    data = build(env, url=long_url)
    msg = parse(data)

    lines = [line for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
             if long_url.encode() in line]
    assert len(lines) == 1 and lines[0].startswith(b"List-Unsubscribe: ")
    assert f"<{long_url}>" in msg["List-Unsubscribe"]
    assert f"<mailto:sme-team@{SENDER_DOMAIN}?subject=unsubscribe>" in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize("url", [
    "https://x.example/u/a b",
    "https://x.example/u/a>, <https://evil.example/",
    "https://x.example/u/a\r\nBcc: victim@example.org",
])
def test_an_unsubscribe_url_that_is_not_header_safe_is_refused(env, url):
    with pytest.raises(InputError) as caught:
        build(env, url=url)

    assert str(caught.value) == "unsubscribe URL for zoe.mueller@example.org is not header-safe"


def test_every_message_has_the_same_headers_in_the_same_order(env):
    names = [parse(build(env, n, subject=s)).keys()
             for n, s in [("", "a"), ("Zoë", "ü" * 2000), ("x" * 1500, "b" * 1500)]]

    assert names == [HEADER_NAMES] * 3


# --- line lengths -------------------------------------------------------------------------------


@pytest.mark.parametrize("subject, name", [
    ("A" * 3000, "Ann"),
    ("Ü" * 3000, "Zoë"),
    (("word " * 600).strip(), "Ann"),
    ("Subject", "N" * 1500),  # formataddr would not fold a long ASCII name
    ("Subject", '"' * 600),  # nor one that only grows long once its quotes are escaped
    ("Subject", ("Zoë " * 400).strip()),
])
def test_no_physical_line_is_longer_than_998_octets(env, subject, name):
    word = "x" * 5000
    ed = edition(html=HTML.replace("News.", word + " " + "ü" * 5000),
                 text=TEXT.replace("News.", word))

    data = build(env, name, subject=subject, ed=ed)

    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = parse(data)
    assert msg["Subject"] == subject
    assert rfc2047_display_name(raw_header(data, "To")) == name
    text, html = bodies(msg)
    assert word in text and word in html
    assert all_defects(msg) == []


# --- header injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Ann\r\nBcc: victim@example.org", "Ann\nBcc: x@example.org",
                                 "Ann\rLee", "Ann\x00Lee"])
def test_a_line_break_or_nul_in_the_name_is_refused(env, bad):
    with pytest.raises(InputError) as caught:
        build(env, bad)

    assert str(caught.value).startswith(
        "name of zoe.mueller@example.org contains a control character (U+00")


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_unicode_line_separators_count_as_line_breaks(env, separator):
    """email.header folds at them (str.splitlines), silently changing the text."""
    with pytest.raises(InputError, match="name of .* contains a control character"):
        build(env, f"Zoë{separator}Müller")
    with pytest.raises(InputError, match="subject contains a control character"):
        build(env, subject=f"Über{separator}News")


@pytest.mark.parametrize("bad", ["News\r\nBcc: victim@example.org", "News\n", "\rNews"])
def test_a_line_break_in_the_subject_is_refused(env, bad):
    with pytest.raises(InputError) as caught:
        build(env, subject=bad)

    assert str(caught.value).startswith("subject contains a control character (U+000")


def test_a_line_break_in_the_editions_own_subject_is_refused(env):
    with pytest.raises(InputError):
        build(env, ed=edition(subject="News\r\nBcc: victim@example.org"))


@pytest.mark.parametrize("trick", ["=?UTF-8?Q?=0A?=", "Ann =?utf-8?b?DQpCY2M6IHhAeS56?= Lee"])
def test_an_encoded_word_in_the_name_or_subject_is_refused(env, trick):
    with pytest.raises(InputError) as by_name:
        build(env, trick)
    with pytest.raises(InputError) as by_subject:
        build(env, subject=trick)

    assert "name of zoe.mueller@example.org contains an RFC 2047 encoded word" in str(
        by_name.value)
    assert str(by_subject.value).startswith("subject contains an RFC 2047 encoded word")


@pytest.mark.parametrize("control", ["\t", "\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x1f",
                                     "\x7f", "\x90"])
def test_other_control_characters_in_headers_are_refused(env, control):
    with pytest.raises(InputError, match="name of .* contains a control character"):
        build(env, f"Ann{control}Lee")
    with pytest.raises(InputError, match="subject contains a control character"):
        build(env, subject=f"News{control}")


@pytest.mark.parametrize("name", ["Doe, Jane", 'Jane "JD" Doe', "a@b.example, c@d.example",
                                  "Jane <jane@evil.example>", "Ünïcode, with comma"])
def test_a_name_with_specials_still_yields_exactly_one_recipient(env, name):
    data = build(env, name)

    (to,) = parse(data)["To"].addresses
    assert to.addr_spec == "zoe.mueller@example.org"
    _, parsed_addr = email.utils.parseaddr(raw_header(data, "To"))
    assert parsed_addr == "zoe.mueller@example.org"


# --- the property -------------------------------------------------------------------------------

TEXT_NO_BREAKS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00")
    | st.sampled_from("\x90\u202e\u200b\ufeff\u2066\u061c\u200c\u200d\t"),
).filter(lambda s: "=?" not in s)
# Refused rather than encoded: controls (C0, DEL, C1), line separators, and the
# invisible formatting characters (bidi controls, zero-width spaces, BOM; the joiners stay).
CONTROLS = {chr(c) for c in [*range(32), *range(0x7f, 0xa0)]}
LINE_SEPARATORS = {"\x85", "\u2028", "\u2029"}


def _invisible(text: str) -> bool:
    return any(unicodedata.category(c) == "Cf" and c not in "\u200c\u200d" for c in text)


@settings(max_examples=300, deadline=None)
@given(name=TEXT_NO_BREAKS, subject=TEXT_NO_BREAKS)
def test_any_name_and_subject_round_trip_or_are_refused(env, name, subject):
    if (CONTROLS | LINE_SEPARATORS) & set(name + subject) or _invisible(name + subject):
        with pytest.raises(InputError, match="contains (a control|a bidi control|an "
                                             "invisible formatting) character"):
            build(env, name, subject=subject)
        return

    data = build(env, name, subject=subject)
    msg = parse(data)

    assert all_defects(msg) == []
    assert msg.keys() == HEADER_NAMES
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    (to,) = msg["To"].addresses
    assert to.addr_spec == "zoe.mueller@example.org"
    assert rfc2047_display_name(raw_header(data, "To")) == name
    # The stdlib parser folds whitespace (and, gh-128110, adds some between encoded words),
    # but must see the same characters.
    assert "".join(to.display_name.split()) == "".join(name.split())
    assert str(make_header(decode_header(raw_header(data, "Subject")))) == subject
    assert "".join(msg["Subject"].split()) == "".join(subject.split())


# --- personalise --------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001, ANN201 - the HTMLParser API
        self.tags.append((tag, dict(attrs)))


def test_placeholders_are_replaced_in_html_and_text():
    who = Recipient("Ann", "https://x.example/u/tok")

    html = personalise_html(f"<p>{NAME}</p><a href=\"{UNSUBSCRIBE_URL}\">x</a>", who, "reader")
    text = personalise_text(f"{NAME} {UNSUBSCRIBE_URL} {NAME}", who, "reader")

    assert html == '<p>Ann</p><a href="https://x.example/u/tok">x</a>'
    assert text == "Ann https://x.example/u/tok Ann"


def test_an_unknown_placeholder_is_left_as_is_and_reported():
    template = f"Hi {NAME}, __NL_COUPON_CODE__ and __nl_lower__"

    assert personalise_text(template, Recipient("Ann", "u"), "reader") == (
        "Hi Ann, __NL_COUPON_CODE__ and __nl_lower__")
    assert unknown_placeholders(template) == ["__NL_COUPON_CODE__"]


def test_a_name_that_looks_like_a_placeholder_is_not_substituted_again():
    who = Recipient(UNSUBSCRIBE_URL, "https://x.example/u/tok")

    assert personalise_text(f"{NAME}|{UNSUBSCRIBE_URL}", who, "reader") == (
        f"{UNSUBSCRIBE_URL}|https://x.example/u/tok")


@pytest.mark.parametrize("url", [
    'https://x.example/u/a b"><script>alert(1)</script>',
    "https://x.example/u/a' onmouseover='alert(1)",
    "https://x.example/u/<b>\t\"x\"",
])
def test_a_url_with_spaces_or_quotes_cannot_break_out_of_href(url):
    html = personalise_html(f'<p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p>',
                            Recipient("Ann", url), "reader")
    text = personalise_text(f"Unsubscribe: {UNSUBSCRIBE_URL}\n", Recipient("Ann", url), "reader")

    links = _Links()
    links.feed(html)
    assert [tag for tag, _ in links.tags] == ["p", "a"]  # no <script>, no <b>
    (href,) = [attrs for tag, attrs in links.tags if tag == "a"]
    assert list(href) == ["href"]  # no onmouseover
    assert href["href"].startswith("https://x.example/u/")
    assert not any(c in href["href"] for c in ' "<>\t')
    assert "%20" in href["href"] or "%09" in href["href"]
    url_in_text = text.split("Unsubscribe: ", 1)[1].rstrip("\n")
    assert not any(c in url_in_text for c in ' "<>\t')
