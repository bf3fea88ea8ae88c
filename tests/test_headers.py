"""One rule for header text: config, drafts, the list, the web form and message all obey it."""

from __future__ import annotations

import email
import email.policy
import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from newsletter.audience.csv_export import unguard_cell
from newsletter.audience.subscribers import clean_name
from newsletter.compose.drafts import load_draft
from newsletter.compose.message import Personal, build_message, make_envelope
from newsletter.config import load_config
from newsletter.errors import ConfigError, DraftError, InputError
from newsletter.headers import check_header_text, clean_header_text, header_text_problem
from newsletter.model import Edition

CONFIG = """\
[newsletter]
name = {name}
from = "IP for Business <newsletter@ipbusiness.example.org>"
reply_to = "sme-team@ipbusiness.example.org"
base_url = "https://ipbusiness.example.org/newsletter"
list_id = "ip-for-business.ipbusiness.example.org"
default_language = "en"
timezone = "Europe/Zurich"
postal_address = "IP for Business, Geneva"
"""
HEADER_NAMES = ["From", "To", "Date", "Message-ID", "List-Unsubscribe", "Subject", "Reply-To",
                "List-Id", "List-Unsubscribe-Post", "Content-Language", "MIME-Version",
                "Content-Type"]
REFUSED = {
    "\x00": "a control character", "\t": "a control character", "\x1b": "a control character",
    "\x7f": "a control character", "\x85": "a control character",
    "\x90": "a control character",  # C1: passed the old final gate in message.py
    "\u2028": "a control character", "\u2029": "a control character",
    "\u202e": "a bidi control character",  # passed the old config check into From
    "\u202a": "a bidi control character", "\u2066": "a bidi control character",
    "\u2069": "a bidi control character", "\u200e": "a bidi control character",
    "\u200f": "a bidi control character", "\u061c": "a bidi control character",
    "\u200b": "an invisible formatting character", "\ufeff": "an invisible formatting character",
    "\u2060": "an invisible formatting character", "\u00ad": "an invisible formatting character",
    "\U000e0041": "an invisible formatting character",  # a tag character ("ASCII smuggling")
}


@pytest.mark.parametrize("char", sorted(REFUSED))
def test_each_refused_character_is_named_by_its_code_point(char):
    problem = header_text_problem(f"Invoice{char}fdp.exe")
    assert problem == f"contains {REFUSED[char]} (U+{ord(char):04X})"
    with pytest.raises(InputError, match=re.escape(f"subject {problem}")):
        check_header_text(f"Invoice{char}fdp.exe", "subject")


@pytest.mark.parametrize("text", ["=?utf-8?q?Hi?=", "=?x?y?=", "a =?? b ?= c", "=?\u00e9?="])
def test_any_encoded_word_look_alike_is_refused(text):
    assert header_text_problem(text) == "contains an RFC 2047 encoded word (=?...?=)"


@pytest.mark.parametrize("text", [
    "Zoë Müller", "محمد بن عبد الله", "王小明", "Tom & \"Jerry\" <x>", "می\u200cخواهم",
    "👩\u200d💻 news", "What = ? Why ? =", "", "A?=B=?",
])
def test_real_names_and_subjects_pass_unchanged(text):
    assert header_text_problem(text) == "" and check_header_text(text, "name") == text


def test_cleaning_makes_spaces_of_controls_and_drops_invisible_characters():
    assert clean_header_text(" Ann\tLee\r\nBcc:\x00x \u202eevil\u202c\u200b ") == \
        "Ann Lee Bcc: x evil"
    assert clean_header_text("Jean\u00a0Dupont  \u3000 Li\u3000Wei") == \
        "Jean\u00a0Dupont Li\u3000Wei"  # a lone no-break or ideographic space is kept
    assert clean_header_text("=?utf-8?q?x?=") == "=?utf-8?q?x?="  # left for the check


# --- the property over every entry point --------------------------------------------------------

def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn"):
            out.append(f"\\u{ord(ch):04X}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_yaml_string = _toml_string  # YAML double-quoted scalars take the same escapes

HOSTILE_ALPHABET = st.sampled_from(
    list("\x00\t\r\n\x0b\x1b\x7f\x85\x90\x9f\u2028\u2029\u202a\u202e\u2066\u2069\u200b\u200c"
         "\u200d\u200e\u061c\ufeff\u00ad=?\"\\<>,;:()@ aZé")) | st.characters(
    blacklist_categories=("Cs",))


def _config_accepts(name: str, folder: Path) -> tuple[bool, object]:
    path = folder / "newsletter.toml"
    path.write_text(CONFIG.format(name=_toml_string(name)), encoding="utf-8")
    try:
        return True, load_config(path)
    except ConfigError:
        return False, None


def _draft_accepts(subject: str, folder: Path) -> bool:
    path = folder / "2026-12.md"
    path.write_text(f'---\nsubject: {_yaml_string(subject)}\nstatus: ready\n---\n\nHello.\n',
                    encoding="utf-8")
    try:
        return load_draft(path, timezone=ZoneInfo("UTC")).subject == subject
    except DraftError:
        return False


def _build(name: str, subject: str, display: str) -> bytes:
    env = make_envelope(name, "IP for Business", "newsletter@ipbusiness.example.org",
                        "sme-team@ipbusiness.example.org", "ip.example.org")
    edition = Edition("2026-12", "en", subject, "", "<p>Hi</p>", "Hi\n", "reader")
    who = Personal("zoe@example.org", display, "https://x.example/u/t", "<1@example.org>")
    return build_message(edition, env, who, datetime(2026, 12, 1, tzinfo=UTC))


def _raw(data: bytes, header: str) -> str:
    head = re.sub(r"\r\n(?=[ \t])", "", data.split(b"\r\n\r\n", 1)[0].decode("ascii"))
    (value,) = [line.split(": ", 1)[1] for line in head.split("\r\n")
                if line.lower().startswith(header.lower() + ":")]
    return value


def _phrase(value: str) -> str:
    """A display phrase as a client reads it (RFC 2047 6.2: no space between encoded words)."""
    phrase = value.rsplit(" <", 1)[0]
    if phrase.startswith('"'):
        return email.utils.parseaddr(value)[0]
    return str(make_header(decode_header(phrase)))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(HOSTILE_ALPHABET, min_size=1, max_size=40))
@example(text="'=")  # once found: a cell the CSV export guards
def test_any_text_is_refused_everywhere_or_is_exactly_the_header(text: str) -> None:
    """Config (name), draft (subject), the list (a CSV or web-form name) and message agree:
    refused by all, or written so that a client reads exactly it, with no new header line."""
    assume(text == text.strip() and not re.search(r"\s\s", text))
    accepted = header_text_problem(text) == ""
    with tempfile.TemporaryDirectory() as folder:
        config_ok, _ = _config_accepts(text, Path(folder))
        draft_ok = _draft_accepts(text, Path(folder))
    try:
        listed = clean_name(text)
    except ValueError:
        listed = None
    try:
        data = _build(text, text, text)
        message_ok = True
    except InputError:
        message_ok = False

    # The list reads a cell the export guarded ("'=1") as what was exported ("=1").
    assert (config_ok, draft_ok, listed == unguard_cell(text), message_ok) == (accepted,) * 4
    if listed is not None:
        assert header_text_problem(listed) == ""  # cleaned, never passed on dirty
    if not accepted:
        return
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert list(msg.keys()) == HEADER_NAMES
    assert str(make_header(decode_header(_raw(data, "Subject")))) == text
    assert _phrase(_raw(data, "To")) == text
    assert _phrase(_raw(data, "List-Id")) == text


def test_a_name_the_export_guarded_is_read_back_as_it_was_exported() -> None:
    """Hypothesis found "'=": the export writes a formula-like cell "=" as "'=", so the list
    reads "'=" back as "=", which is still header-safe text."""
    assert clean_name("'=") == "="
    assert header_text_problem(clean_name("'=")) == ""
