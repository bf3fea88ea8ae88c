"""DKIM: keys made here, real messages signed, and verified by dkimpy against the made record."""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dkim.util import parse_tag_value
from dkim_kinds import KINDS, key_pair, needs_nacl

from newsletter.cli.dkim_commands import cmd_dkim
from newsletter.compose.message import Personal, build_message, make_envelope, message_id
from newsletter.compose.personalise import NAME, UNSUBSCRIBE_URL
from newsletter.config import load_config
from newsletter.deliver.dkim import DkimSigner, signer_from_config
from newsletter.deliver.dkimkeys import KeyPair, keygen, txt_strings
from newsletter.errors import ConfigError, InputError
from newsletter.model import Edition

DOMAIN = "ipbusiness.example.org"
SELECTOR = "nl2026"
ISSUE = "2026-12"
SUBJECT = "IP news for December"
UNSUB = f"https://{DOMAIN}/newsletter/unsubscribe/em9lLm11ZWxsZXJAZXhhbXBsZS5vcmc.265VmQBF"
PROMISED = ["from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
            "list-unsubscribe-post"]
CONFIG = f"""\
[newsletter]
name = "IP for Business"
from = "IP for Business <newsletter@{DOMAIN}>"
reply_to = "sme-team@{DOMAIN}"
base_url = "https://{DOMAIN}/newsletter"
list_id = "ip-for-business.{DOMAIN}"
default_language = "en"
timezone = "Europe/Zurich"
postal_address = "IP for Business, 34 chemin des Colombettes, 1211 Geneva 20, Switzerland"

[store]
path = "newsletter.db"
"""


# --- fixtures: keys, the DNS that publishes them, and real messages -----------------------

@pytest.fixture(scope="module", params=KINDS)
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return key_pair(SELECTOR, DOMAIN, request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def signer(pair: KeyPair) -> DkimSigner:
    return DkimSigner.load(pair.selector, pair.domain, pair.private_file)


def record_in(dns_file: Path) -> tuple[str, str]:
    """(name, value) from a zone file line: receivers join the quoted strings as they are."""
    line = dns_file.read_text(encoding="ascii").strip()
    name, _, rest = line.partition(" IN TXT ")
    return name, "".join(re.findall(r'"([^"]*)"', rest))


def dns_for(*pairs: KeyPair) -> Callable[..., bytes | None]:
    """A resolver that knows only these keys' records, read from their .dns files."""
    records = dict(record_in(p.dns_file) for p in pairs)
    return lambda name, timeout=5: (records[name.decode()].encode()
                                    if name.decode() in records else None)


def build(name: str = "Zoë Müller", subject: str = SUBJECT, reply_to: str = f"sme-team@{DOMAIN}",
          email_addr: str = "zoe.mueller@example.org") -> bytes:
    edition = Edition(
        issue=ISSUE, language="en", subject=subject, preheader="Patents, trademarks",
        html=(f"<html><body><p>Dear {NAME},</p><p>Patents and trademarks for SMEs.</p>"
              f'<p><a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p></body></html>'),
        text=(f"Dear {NAME},\n\nPatents and trademarks for SMEs.\n\n"
              f"Unsubscribe: {UNSUBSCRIBE_URL}\n"),
        fallback_name="reader")
    env = make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}", reply_to,
                        f"ip-for-business.{DOMAIN}")
    who = Personal(email_addr, name, UNSUB, message_id(ISSUE, email_addr, DOMAIN))
    return build_message(edition, env, who, datetime(2026, 12, 1, 8, 30, tzinfo=UTC))


def tags(signed: bytes) -> dict[bytes, bytes]:
    msg = email.message_from_bytes(signed, policy=email.policy.compat32)
    return parse_tag_value(msg["DKIM-Signature"].encode())


def signed_headers(signed: bytes) -> list[str]:
    return [h.strip().decode() for h in tags(signed)[b"h"].split(b":")]


def split(message: bytes) -> tuple[bytes, bytes]:
    head, body = message.split(b"\r\n\r\n", 1)
    return head, body


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "newsletter.toml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return path


# --- keygen ---------------------------------------------------------------------------------

def test_keygen_writes_a_private_key_only_the_owner_can_read(pair: KeyPair) -> None:
    assert pair.private_file.name == f"{SELECTOR}.private"
    assert stat.S_IMODE(pair.private_file.stat().st_mode) == 0o600
    assert pair.private_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert ser.load_pem_private_key(pair.private_file.read_bytes(), password=None)


def test_keygen_writes_the_txt_record_to_publish(pair: KeyPair) -> None:
    name, value = record_in(pair.dns_file)
    assert name == f"{SELECTOR}._domainkey.{DOMAIN}."
    assert value == pair.record_value
    assert re.fullmatch(rf"v=DKIM1; k={pair.kind}; p=[A-Za-z0-9+/]+=*", value)
    line = pair.dns_file.read_text(encoding="ascii")
    assert line == pair.zone_line + "\n" and line.count("\n") == 1
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', line))


def test_keygen_rsa_record_needs_two_dns_strings_and_ed25519_one(pair: KeyPair) -> None:
    strings = re.findall(r'"([^"]*)"', pair.zone_line)
    assert len(strings) == (2 if pair.kind == "rsa" else 1)  # RSA-2048: ~410 characters


def test_txt_strings_are_at_most_255_characters_and_join_back() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 700
    strings = txt_strings(value)
    assert [len(s) for s in strings] == [255, 255, 208]
    assert "".join(strings) == value


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    first = keygen("s1", "example.org", tmp_path, kind="ed25519")
    before = first.private_file.read_bytes()
    with pytest.raises(InputError, match="already exists; keygen never overwrites") as err:
        keygen("s1", "example.org", tmp_path, kind="ed25519")
    assert str(first.private_file) in str(err.value)
    assert first.private_file.read_bytes() == before


def test_keygen_refuses_when_only_the_dns_file_exists(tmp_path: Path) -> None:
    (tmp_path / "s1.dns").write_text("somebody's record\n")
    with pytest.raises(InputError, match="already exists"):
        keygen("s1", "example.org", tmp_path, kind="ed25519")
    assert not (tmp_path / "s1.private").exists()


@pytest.mark.parametrize(("selector", "domain"), [
    ("../s1", "example.org"), ("s 1", "example.org"), ("-s1", "example.org"),
    ("s1", "example.org/x"), ("s1", ""), ("", "example.org"),
])
def test_keygen_refuses_names_that_are_not_dns_names(tmp_path: Path, selector: str,
                                                    domain: str) -> None:
    with pytest.raises(InputError, match="must be a DNS name"):
        keygen(selector, domain, tmp_path, kind="ed25519")
    assert list(tmp_path.iterdir()) == []


def test_keygen_refuses_weak_rsa_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="RFC 8301"):
        keygen("s1", "example.org", tmp_path, bits=1024)


# --- signing and verifying ------------------------------------------------------------------

def test_signed_message_verifies_against_the_published_record(pair: KeyPair,
                                                               signer: DkimSigner) -> None:
    signed = signer.sign(build())
    assert signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=dns_for(pair))


def test_signature_needs_the_record_under_its_own_name(pair: KeyPair,
                                                       signer: DkimSigner) -> None:
    signed = signer.sign(build())
    assert not dkim.verify(signed, dnsfunc=lambda name, timeout=5: None)
    other = DkimSigner(f"{SELECTOR}x", DOMAIN, signer.kind, signer.key_file, signer.key)
    assert not dkim.verify(other.sign(build()), dnsfunc=dns_for(pair))


def test_signature_is_relaxed_and_covers_what_receivers_check(pair: KeyPair,
                                                              signer: DkimSigner) -> None:
    signed = signer.sign(build())
    t = tags(signed)
    assert t[b"c"] == b"relaxed/relaxed"
    assert t[b"a"] == (b"rsa-sha256" if pair.kind == "rsa" else b"ed25519-sha256")
    assert (t[b"d"], t[b"s"]) == (DOMAIN.encode(), SELECTOR.encode())
    h = signed_headers(signed)
    assert set(PROMISED) <= set(h)
    assert {"reply-to", "mime-version", "content-type", "content-language"} <= set(h)
    # over-signed: every field is listed once more than it occurs, so no second copy fits
    assert all(h.count(name) == 2 for name in PROMISED)


def test_a_header_the_message_lacks_is_listed_once_so_none_can_be_added(
        signer: DkimSigner) -> None:
    signed = signer.sign(build())
    assert b"\r\nCc:" not in split(signed)[0]
    assert signed_headers(signed).count("cc") == 1  # a null string: an added Cc breaks it


def _change_subject(m: bytes) -> bytes:
    return m.replace(f"Subject: {SUBJECT}".encode(), b"Subject: IP news for January", 1)


def _change_body(m: bytes) -> bytes:
    head, body = split(m)
    return head + b"\r\n\r\n" + body.replace(b"Patents and", b"Patients and", 1)


def _change_unsubscribe(m: bytes) -> bytes:
    head, body = split(m)
    return head.replace(UNSUB.encode(), b"https://evil.example/unsubscribe") + b"\r\n\r\n" + body


def _add_header(line: bytes) -> Callable[[bytes], bytes]:
    """On top, as relays add theirs: verifiers take the bottom-most copy, so only the
    over-signing (a name listed once more than it occurs) catches this one."""
    return lambda m: line + b"\r\n" + m


@pytest.mark.parametrize("tamper", [
    _change_subject, _change_body, _change_unsubscribe,
    _add_header(b"From: Someone Else <ceo@evil.example>"),
    _add_header(b"Subject: Urgent: confirm your password"),
    _add_header(b"List-Unsubscribe: <https://evil.example/u>"),
    _add_header(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
    _add_header(b"To: someone@evil.example"),
    _add_header(b"Date: Mon, 1 Jan 2024 00:00:00 +0000"),
    _add_header(b"Message-ID: <forged@evil.example>"),
    _add_header(b"List-Id: Other list <other.evil.example>"),
    _add_header(b"Reply-To: reply@evil.example"),
    _add_header(b"Content-Type: text/html"),
    _add_header(b"Cc: everyone@evil.example"),
], ids=["subject", "body", "list-unsubscribe", "second-from", "second-subject",
        "second-list-unsubscribe", "second-list-unsubscribe-post", "second-to", "second-date",
        "second-message-id", "second-list-id", "second-reply-to", "second-content-type",
        "added-cc"])
def test_any_change_after_signing_fails_verification(pair: KeyPair, signer: DkimSigner,
                                                     tamper: Callable[[bytes], bytes]) -> None:
    signed = signer.sign(build())
    changed = tamper(signed)
    assert changed != signed
    assert not dkim.verify(changed, dnsfunc=dns_for(pair))


def test_relaxed_canonicalisation_survives_refolding_in_transit(pair: KeyPair,
                                                                signer: DkimSigner) -> None:
    signed = signer.sign(build())
    refolded = signed.replace(b"Subject: IP news for December",
                              b"subject:  IP\r\n  news   for December", 1)
    assert refolded != signed
    assert dkim.verify(refolded, dnsfunc=dns_for(pair))


def test_long_encoded_names_and_subjects_still_verify(pair: KeyPair, signer: DkimSigner) -> None:
    message = build(name="Zoë Müller-Lüdenscheidt " * 12, subject="Geistiges Eigentum für KMU: "
                    "Marken, Patente, Designs — die Übersicht für Dezember " * 3)
    assert dkim.verify(signer.sign(message), dnsfunc=dns_for(pair))


def test_signed_message_parses_cleanly_with_short_crlf_lines(signer: DkimSigner) -> None:
    signed = signer.sign(build())
    msg = email.message_from_bytes(signed, policy=email.policy.default)
    assert [p.defects for p in msg.walk()] == [[] for _ in msg.walk()]
    assert msg["From"].addresses[0].addr_spec == f"newsletter@{DOMAIN}"
    assert len(msg.get_all("DKIM-Signature")) == 1
    assert signed.count(b"\n") == signed.count(b"\r\n") == signed.count(b"\r")  # only CRLF
    lines = signed.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head, _ = split(signed)
    signature_lines = head.split(b"\r\nFrom: ")[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in signature_lines)  # dkimpy folds at 72 plus a word


def test_signer_never_shows_its_key(signer: DkimSigner) -> None:
    from cryptography.hazmat.primitives import serialization as ser

    pem = signer.key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                   ser.NoEncryption()).decode()
    secret_line = pem.splitlines()[1]
    assert secret_line not in repr(signer) and "key=" not in repr(signer)


# --- the key file ---------------------------------------------------------------------------

def _encrypted_key(path: Path) -> None:
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"secret")))


def _ec_key(path: Path) -> None:
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCg\n"),
     "not a PEM RSA or Ed25519 private key"),
    (lambda p: p.mkdir(), "cannot read"),
    (_encrypted_key, "the key is encrypted"),
    (_ec_key, "DKIM signs with RSA or Ed25519"),
], ids=["missing", "not-pem", "directory", "encrypted", "ec"])
def test_a_bad_key_file_is_a_config_error_naming_it(tmp_path: Path, make: Callable[[Path], None],
                                                    says: str) -> None:
    key_file = tmp_path / "dkim" / "nl2026.private"
    key_file.parent.mkdir()
    make(key_file)
    config = load_config(write_config(tmp_path, f'[dkim]\nselector = "{SELECTOR}"\n'
                                                 f'domain = "{DOMAIN}"\n'
                                                 'key_file = "dkim/nl2026.private"\n'))
    with pytest.raises(ConfigError) as err:
        signer_from_config(config)
    text = str(err.value)
    assert text.startswith(f"{key_file}: ")
    assert says in text and "'dkim.key_file'" in text
    assert "\n" not in text
    assert err.value.exit_code == 2


def test_a_selector_that_is_no_dns_name_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, '[dkim]\nselector = "nl 2026"\n'
                                                f'domain = "{DOMAIN}"\nkey_file = "k.pem"\n'))
    with pytest.raises(ConfigError, match="'dkim.selector' must be a DNS name"):
        signer_from_config(config)


def test_no_dkim_section_means_no_signer(tmp_path: Path) -> None:
    assert signer_from_config(load_config(write_config(tmp_path))) is None


def test_signer_from_config_reads_the_key_beside_the_config(tmp_path: Path) -> None:
    pair = keygen(SELECTOR, DOMAIN, tmp_path / "dkim", kind="rsa")
    config = load_config(write_config(tmp_path, f'[dkim]\nselector = "{SELECTOR}"\n'
                                                f'domain = "{DOMAIN}"\n'
                                                'key_file = "dkim/nl2026.private"\n'))
    signer = signer_from_config(config)
    assert signer is not None and signer.kind == "rsa"
    assert dkim.verify(signer.sign(build()), dnsfunc=dns_for(pair))


# --- the command ----------------------------------------------------------------------------

def run_keygen(config: Path, **options: str | None) -> None:
    args = argparse.Namespace(config=config, action="keygen", selector=None, domain=None,
                              out=None, kind="rsa")
    for key, value in options.items():
        setattr(args, key, value)
    assert cmd_dkim(args) == 0


def test_cmd_dkim_keygen_prints_the_record_in_the_file_and_the_config_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_config(tmp_path)
    out = tmp_path / "keys"
    run_keygen(config_path, selector="s1", domain="example.org", out=str(out))
    printed = capsys.readouterr().out.splitlines()
    private, dns_file = out / "s1.private", out / "s1.dns"
    assert printed[0].startswith(f"wrote {private} ")
    assert printed[1].startswith(f"wrote {dns_file} ")
    assert "  name:  s1._domainkey.example.org" in printed
    name, value = record_in(dns_file)
    assert f"  value: {value}" in printed
    assert f"  zone file: {dns_file.read_text().strip()}" in printed
    assert printed[-1] == "made an RSA-2048 DKIM key for s1._domainkey.example.org"
    toml = printed[printed.index("  [dkim]"):-1]
    assert [line.strip() for line in toml] == [
        "[dkim]", 'selector = "s1"', 'domain = "example.org"', 'key_file = "keys/s1.private"']
    # Pasting the printed lines into newsletter.toml is all it takes to sign.
    config_path.write_text(CONFIG + "\n".join(line.strip() for line in toml) + "\n")
    signer = signer_from_config(load_config(config_path))
    assert signer is not None
    published = KeyPair("s1", "example.org", "rsa", 2048, private, dns_file, value)
    assert dkim.verify(signer.sign(build()), dnsfunc=dns_for(published))


@needs_nacl
def test_cmd_dkim_takes_selector_and_domain_from_the_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_config(tmp_path, f'[dkim]\nselector = "{SELECTOR}"\ndomain = "{DOMAIN}"\n'
                                         'key_file = "dkim/nl2026.private"\n')
    run_keygen(config_path, kind="ed25519")
    printed = capsys.readouterr().out
    assert (tmp_path / "dkim" / "nl2026.private").exists()
    assert f"name:  {SELECTOR}._domainkey.{DOMAIN}\n" in printed
    assert "v=DKIM1; k=ed25519; p=" in printed
    assert "names this key already" in printed and "[dkim]" not in printed
    signer = signer_from_config(load_config(config_path))  # the config already names the key
    assert signer is not None and signer.kind == "ed25519"


def test_cmd_dkim_signs_for_the_from_domain_when_the_config_names_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_keygen(write_config(tmp_path), selector="s2", kind="ed25519")
    assert f"name:  s2._domainkey.{DOMAIN}\n" in capsys.readouterr().out
    assert (tmp_path / "dkim" / "s2.dns").exists()


def test_cmd_dkim_needs_a_selector_when_the_config_has_none(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs --selector"):
        run_keygen(tmp_path / "missing.toml", domain="example.org")
    with pytest.raises(InputError, match="needs --domain"):
        run_keygen(tmp_path / "missing.toml", selector="s1")


@pytest.mark.parametrize("kind", KINDS)
def test_send_signs_every_message_and_the_signatures_verify(tmp_path, monkeypatch,
                                                            kind: str) -> None:
    """End to end: `newsletter send` with [dkim] over real SMTP, an RSA and an Ed25519 key;
    dkimpy verifies each copy."""
    import dkim as dkimpy
    from conftest_delivery import make_delivery_project
    from smtp_server import Script, ScriptedServer

    project = make_delivery_project(tmp_path / "nl", 4)
    pair = keygen("s2026", "ipbusiness.example.org", project.root / "dkim", kind=kind)
    with open(project.config, "a", encoding="utf-8") as out:
        out.write('\n[dkim]\nselector = "s2026"\ndomain = "ipbusiness.example.org"\n'
                  'key_file = "dkim/s2026.private"\n')
    record = pair.record_value.encode()
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        monkeypatch.setenv("NEWSLETTER_SECRET", "s")
        assert project.cli("send", "--now", "2026-11-22T10:00") == 0
    assert len(script.messages) == 4
    for _, data in script.messages:
        assert dkimpy.verify(data, dnsfunc=lambda name, timeout=5: record
                             if name == b"s2026._domainkey.ipbusiness.example.org." else None)
