"""The send path's per-edition work (issue 17) changes no byte: messages assembled from shared
parts equal messages built from scratch, dot-stuffing part by part equals stuffing the whole,
and a DKIM body hash continued from a saved state equals one computed over the whole body."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import dkim
import pytest
from dkim_kinds import KINDS, key_pair

from newsletter.compose.message import (
    Envelope,
    Personal,
    Prepared,
    assemble,
    build_message,
    encode_address,
    make_envelope,
    message_id,
    prepare,
)
from newsletter.compose.parts import choose_encoding
from newsletter.compose.personalise import Recipient, personalise_html, personalise_text
from newsletter.compose.wire import Shared, Wire
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.dkimkeys import KeyPair
from newsletter.deliver.smtp_data import data_payload
from newsletter.model import Edition

sys.path.insert(0, str(Path(__file__).parent.parent))
from test_layout import LANGUAGES  # noqa: E402
from test_layout import sample_edition as _sample_edition  # noqa: E402

sample_edition = functools.cache(_sample_edition)

DOMAIN = "ipbusiness.example.org"
NAMES = ["", "Zoë Müller", "Reader Number 7", "ليلى حداد", "Юлия Петрова", "王小明",
         ".Dot Leading", "Ange " * 60]
NOTE = "Cette édition est en anglais : la vôtre n'est pas encore prête. " * 3
WHEN = datetime(2026, 11, 5, 9, 0, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def env() -> Envelope:
    return make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}",
                         f"sme-team@{DOMAIN}", f"ip-for-business.{DOMAIN}")


@pytest.fixture(scope="module")
def editions() -> list[Edition]:
    """The six sample editions, and each with lines that start with '.' and long lines."""
    found = []
    for language in LANGUAGES:
        edition = sample_edition(language)
        dotted = ".starts with a dot\n" + edition.text + "\n.\n..two\n" + "long " * 80 + "\n"
        found += [edition, dataclasses.replace(
            edition, text=dotted, html=edition.html.replace("<body", "\n.dot\n<body", 1))]
    return found


def who(n: int, name: str, note: str = "") -> Personal:
    address = f"reader{n}@example.com"
    return Personal(address, name, f"https://{DOMAIN}/newsletter/unsubscribe/tok{n}.x",
                    message_id("2026-11", address, DOMAIN), "", note)


@functools.cache
def _prepared(edition: Edition, env: Envelope) -> Prepared:
    return prepare(edition, env)


# --- the old path, written plainly: fill each placeholder line, or the whole base64 text ---

def _reference_part(template: str, personalise, recipient: Recipient,  # noqa: ANN001
                    fallback: str) -> tuple[str, bytes]:
    encoding = choose_encoding(template)
    if encoding == "base64":
        text = template.replace("\r\n", "\n").replace("\n", "\r\n")
        encoded = base64.b64encode(personalise(text, recipient, fallback).encode("utf-8"))
        return encoding, b"\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    lines = []
    for line in template.replace("\r\n", "\n").split("\n"):
        qp = binascii.b2a_qp(personalise(line, recipient, fallback).encode("utf-8"),
                             istext=True, header=False)
        lines.append(qp.replace(b"\n", b"\r\n"))
    return encoding, b"\r\n".join(lines)


def reference(edition: Edition, env: Envelope, p: Personal, when: datetime) -> bytes:
    prepared = _prepared(edition, env)  # its shared headers and boundary only
    recipient = Recipient(p.name, p.unsubscribe_url, p.edition_note)
    mailto = p.unsubscribe_mailto or env.list_unsubscribe_mailto
    head = "\r\n".join([f"From: {env.sender}", f"To: {encode_address(p.name, p.email)}",
                        f"Date: {format_datetime(when)}", f"Message-ID: {p.message_id}",
                        f"List-Unsubscribe: <{p.unsubscribe_url}>, <{mailto}>"]).encode()
    lines = [head, prepared.static_head, b"", b"This is a multi-part message in MIME format."]
    mark = b"--" + prepared.boundary.encode()
    for subtype, template, personalise in (("plain", edition.text, personalise_text),
                                           ("html", edition.html, personalise_html)):
        encoding, body = _reference_part(template, personalise, recipient,
                                         edition.fallback_name)
        lines += [mark, f"Content-Type: text/{subtype}; charset=utf-8".encode(),
                  f"Content-Transfer-Encoding: {encoding}".encode(), b"", body]
    return b"\r\n".join([*lines, mark + b"--", b""])


def test_assembled_messages_equal_the_old_path_byte_for_byte(editions, env):
    for edition in editions:
        prepared = prepare(edition, env)
        for n, name in enumerate(NAMES):
            p = who(n, name, NOTE if n % 2 else "")  # every other reader gets the note
            assert bytes(assemble(prepared, env, p, WHEN)) == reference(edition, env, p, WHEN), (
                edition.language, name)


def test_a_base64_part_whose_values_are_empty_ends_as_one_run_would(env):
    text = "ب" * 300 + "__NL_EDITION_NOTE__"  # no note: nothing follows the shared lines
    edition = Edition("2026-11", "ar", "S", "", "<p>" + "ب" * 300 + "</p>", text, "reader")
    for note in ("", NOTE):
        p = who(1, "ليلى", note)
        assert bytes(build_message(edition, env, p, WHEN)) == reference(edition, env, p, WHEN)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_reader_gets_the_same_shared_parts_and_their_own_lines(env, language):
    """Names of other lengths start the base64 text after them elsewhere in a line: each
    start is encoded once and shared by every reader whose values end there."""
    prepared = prepare(sample_edition(language), env)
    one, two, three = (assemble(prepared, env, who(n, name), WHEN)
                       for n, name in ((1, "Reader 1"), (2, "Reader 2"), (3, "Long Name " * 3)))
    assert isinstance(one, Wire) and one[one.body_start:] == b"".join(one.parts)
    shared = [a for a, b in zip(one.parts, two.parts, strict=True) if a is b]
    assert shared and all(isinstance(a, Shared) for a in shared)
    assert sum(map(len, shared)) > 0.9 * len(one[one.body_start:])
    assert all(part.endswith(b"\r\n") for part in one.parts + three.parts)
    assert sum(len(p) for p in three.parts if isinstance(p, Shared)) > 0.9 * len(
        three[three.body_start:])


# --- dot-stuffing ----------------------------------------------------------------------

def stuffed_whole(data: bytes) -> bytes:
    """RFC 5321 4.5.2 as the transport did it before, over the whole message."""
    payload = re.sub(rb"(?m)^\.", b"..", bytes(data))
    return payload + (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def test_dot_stuffing_part_by_part_equals_stuffing_the_whole(editions, env):
    dotted = 0
    for edition in editions:
        message = build_message(edition, env, who(3, ".Dot Leading", NOTE), WHEN)
        dotted += b"\n." in message
        assert data_payload(message) == stuffed_whole(message)
        assert data_payload(bytes(message)) == stuffed_whole(message)
        assert data_payload(message) == data_payload(message)  # the memo gives the same
    assert dotted >= 3  # the quoted-printable editions with lines starting with "."
    for raw in (b"", b".", b".a\r\n.b", b"a\r\n..\r\n", b"x\n.y"):
        assert data_payload(raw) == stuffed_whole(raw)


def test_the_unjoined_head_and_parts_stuff_to_the_same_payload(editions, env):
    """The pipelined sender writes assemble_parts()'s pieces as they are (no Wire made)."""
    from newsletter.compose.message import assemble_parts
    from newsletter.deliver.smtp_data import stuffed_pieces

    for edition in editions:
        prepared = _prepared(edition, env)
        for n, name in enumerate(NAMES):
            person = who(n, name, NOTE if n % 2 else "")
            head, parts = assemble_parts(prepared, env, person, WHEN)
            whole = assemble(prepared, env, person, WHEN)
            assert head + b"".join(parts) == whole
            assert b"".join(stuffed_pieces(head, parts)) == data_payload(whole)
    assert stuffed_pieces(b"", []) == [b"", b"\r\n", b".\r\n"]

# --- DKIM ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=KINDS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return key_pair("speed", DOMAIN, request.param, tmp_path_factory)


def dns_of(pair: KeyPair):  # noqa: ANN201 - dkimpy's dnsfunc
    line = pair.dns_file.read_text(encoding="ascii").strip()
    name, _, rest = line.partition(" IN TXT ")
    record = "".join(re.findall(r'"([^"]*)"', rest)).encode()
    return lambda asked, timeout=5: record if asked.decode() == name else None


def test_signatures_from_parts_equal_signatures_from_scratch_and_verify(pair, editions, env):
    signer = DkimSigner.load(pair.selector, pair.domain, pair.private_file)
    for edition in editions[:4] + editions[-2:]:  # en, fr (with '.' lines), zh (base64)
        prepared = prepare(edition, env)
        for n, name in enumerate(["Zoë Müller", ".Dot Leading", "王小明"]):
            message = assemble(prepared, env, who(n, name, NOTE if n else ""), WHEN)
            fast = signer.sign(message, now=1764579600)
            slow = signer.sign(bytes(message), now=1764579600)
            assert bytes(fast) == slow
            assert dkim.verify(bytes(fast), dnsfunc=dns_of(pair))
            assert data_payload(fast) == stuffed_whole(slow)


def test_a_changed_shared_part_is_not_hidden_by_the_memo(pair, env):
    signer = DkimSigner.load(pair.selector, pair.domain, pair.private_file)
    message = build_message(sample_edition("en"), env, who(1, "Zoë"), WHEN)
    signed = signer.sign(message, now=1764579600)
    tampered = bytes(signed).replace(b"Dear Zo", b"Dear Xo", 1)
    assert tampered != bytes(signed) and not dkim.verify(tampered, dnsfunc=dns_of(pair))
