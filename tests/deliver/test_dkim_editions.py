"""DKIM signatures on the sample editions as a send makes them (assembled per reader from the
edition's shared parts): they verify with dkimpy for RSA and Ed25519, in the quoted-printable
(en) and base64 (ar) editions, for many readers in a row, and equal a signature computed from
the message's bytes alone; and from a send's forked sender processes."""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from conftest_delivery import make_delivery_project
from dkim_kinds import KINDS, key_pair
from smtp_server import Script, ScriptedServer

from newsletter.compose.message import (
    Envelope,
    Personal,
    assemble,
    assemble_parts,
    make_envelope,
    message_id,
)
from newsletter.compose.message import prepare as prepare_edition
from newsletter.compose.wire import Wire, wire
from newsletter.deliver import dkim_header
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.dkimkeys import KeyPair, keygen
from newsletter.errors import InputError

sys.path.insert(0, str(Path(__file__).parents[1] / "compose"))
from test_layout import sample_edition as _sample_edition  # noqa: E402

DOMAIN = "ipbusiness.example.org"
WHEN = datetime(2026, 11, 5, 9, 0, 7, tzinfo=UTC)
NOW = 1764579600
sample_edition = functools.cache(_sample_edition)


@pytest.fixture(scope="module", params=KINDS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return key_pair("editions", DOMAIN, request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def signer(pair: KeyPair) -> DkimSigner:
    return DkimSigner.load(pair.selector, pair.domain, pair.private_file)


@pytest.fixture(scope="module")
def env() -> Envelope:
    return make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}",
                         f"sme-team@{DOMAIN}", f"ip-for-business.{DOMAIN}")


def dns_of(pair: KeyPair):  # noqa: ANN201 - dkimpy's dnsfunc
    line = pair.dns_file.read_text(encoding="ascii").strip()
    name, _, rest = line.partition(" IN TXT ")
    record = "".join(re.findall(r'"([^"]*)"', rest)).encode()
    return lambda asked, timeout=5: record if asked.decode() == name else None


def reader(n: int, name: str) -> Personal:
    email = f"reader{n:06d}@example.com"
    return Personal(email, name, f"https://{DOMAIN}/newsletter/unsubscribe/t{n}",
                    message_id("2026-11", email, DOMAIN))


NAMES = ["Zoë Müller", "ليلى حداد", "Reader Number 7", "", "Ange " * 30]


@pytest.mark.parametrize("language", ["en", "ar"])
def test_personalised_messages_verify_and_equal_signing_from_scratch(
        pair: KeyPair, signer: DkimSigner, env: Envelope, language: str) -> None:
    prepared = prepare_edition(sample_edition(language), env)
    for n, name in enumerate(NAMES):
        message = assemble(prepared, env, reader(n, name), WHEN)
        assert isinstance(message, Wire)  # the path a send takes: hashed from the parts
        signed = signer.sign(message, now=NOW)
        assert bytes(signed) == signer.sign(bytes(message), now=NOW)
        assert dkim.verify(bytes(signed), dnsfunc=dns_of(pair))


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_field_from_unjoined_parts_is_the_one_sign_prepends(
        pair: KeyPair, signer: DkimSigner, env: Envelope, language: str) -> None:
    """signature_field(head, parts): what a sender that writes the parts as they are puts on
    top of the head; the same bytes as sign() of the joined message, so it verifies too."""
    prepared = prepare_edition(sample_edition(language), env)
    for n, name in enumerate(NAMES[:3]):
        head, parts = assemble_parts(prepared, env, reader(n, name), WHEN)
        field_ = signer.signature_field(head, parts, now=NOW)
        whole = field_ + head + b"".join(parts)
        assert whole == bytes(signer.sign(wire(head, parts), now=NOW))
        assert dkim.verify(whole, dnsfunc=dns_of(pair))
    with pytest.raises(InputError, match="no blank line"):
        signer.signature_field(head[:-2], parts)


@pytest.mark.parametrize("parts", [[b"a\r\n", b"b"], [b"a\r\n", b"\r\n\r\n"], [], [b""]])
def test_parts_that_are_not_whole_lines_are_hashed_as_the_joined_body(
        signer: DkimSigner, parts: list[bytes]) -> None:
    head = b"From: a@example.org\r\nSubject: x\r\n\r\n"
    whole = head + b"".join(parts)
    assert signer.signature_field(head, parts, now=NOW) + whole == signer.sign(whole, now=NOW)


def test_many_readers_in_a_row_each_verify_with_their_own_fields(
        pair: KeyPair, signer: DkimSigner, env: Envelope,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the field memo's bound (made small here), every message still signs its own To,
    Message-ID and List-Unsubscribe; a To swapped from the message before fails."""
    monkeypatch.setattr(dkim_header, "_FIELDS_MAX", 6)
    prepared = prepare_edition(sample_edition("ar"), env)
    previous = b""
    for n in range(12):
        signed = bytes(signer.sign(assemble(prepared, env, reader(n, f"R {n}"), WHEN)))
        assert dkim.verify(signed, dnsfunc=dns_of(pair))
        to = re.search(rb"\r\nTo: [^\r]*", signed)[0]
        if previous:
            swapped = signed.replace(to, re.search(rb"\r\nTo: [^\r]*", previous)[0], 1)
            assert swapped != signed and not dkim.verify(swapped, dnsfunc=dns_of(pair))
        previous = signed


def test_a_message_without_a_blank_line_after_its_header_is_refused(signer: DkimSigner) -> None:
    with pytest.raises(InputError, match="no blank line"):
        signer.sign(b"From: a@example.org\r\nSubject: x\r\n")


@pytest.mark.parametrize("kind", KINDS)
def test_forked_sender_processes_sign_with_the_key_loaded_before_the_fork(
        tmp_path: Path, kind: str) -> None:
    """`newsletter send` as a process with [delivery] processes = 2: both children sign
    (each claims as itself) and every copy verifies."""
    project = make_delivery_project(tmp_path / "nl", 30)
    pair = keygen("fork", DOMAIN, project.root / "dkim", kind=kind)
    text = project.config.read_text(encoding="utf-8").replace(
        "[delivery]\n", "[delivery]\nprocesses = 2\n", 1)
    project.config.write_text(text + f'\n[dkim]\nselector = "fork"\ndomain = "{DOMAIN}"\n'
                              'key_file = "dkim/fork.private"\n', encoding="utf-8")
    script = Script()
    with ScriptedServer(script) as server:
        env = {**os.environ, "NEWSLETTER_SMTP_URL": server.url, "NEWSLETTER_SECRET": "s"}
        env.pop("NEWSLETTER_CRASH_AT", None)
        done = subprocess.run([sys.executable, "-m", "newsletter", "--config",
                               str(project.config), "send", "--now", "2026-11-22T10:00"],
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(project.db) as conn:
        owners = {r[0] for r in conn.execute("SELECT DISTINCT claimed_by FROM deliveries")}
    assert len(owners) == 2
    assert len(script.messages) == 30
    assert all(dkim.verify(data, dnsfunc=dns_of(pair)) for _, data in script.messages)
