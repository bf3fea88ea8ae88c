"""DKIM keys: make a key pair and the DNS record that publishes it (`newsletter dkim keygen`)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from newsletter.deliver.dkim import KINDS, NEW_RSA_BITS, is_dns_name
from newsletter.errors import InputError, NewsletterError


@dataclass(frozen=True)
class KeyPair:
    """A new key: where its files are and the TXT record that publishes its public half."""

    selector: str
    domain: str
    kind: str
    bits: int  # RSA modulus size; 256 for Ed25519
    private_file: Path
    dns_file: Path
    record_value: str  # "v=DKIM1; k=rsa; p=MIIB..."

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def zone_line(self) -> str:
        """The record as a zone file line: a TXT string holds at most 255 octets (RFC 1035
        3.3.14), so a longer value is split into several, which receivers concatenate."""
        strings = " ".join(f'"{s}"' for s in txt_strings(self.record_value))
        return f"{self.record_name}. IN TXT {strings}"


def txt_strings(value: str, size: int = 255) -> list[str]:
    return [value[i:i + size] for i in range(0, len(value), size)] or [""]


def keygen(selector: str, domain: str, out_dir: Path | str, *, kind: str = "rsa",
           bits: int = 2048) -> KeyPair:
    """Write OUT/SELECTOR.private (PEM, 0600) and OUT/SELECTOR.dns; never overwrite either."""
    # cryptography's key classes load only when a key is made (a rare, one-off command)
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    for what, value in (("selector", selector), ("domain", domain)):
        if not is_dns_name(value):
            raise InputError(f"--{what} must be a DNS name such as 'nl2026' or 'example.org', "
                             f"not {value!r}")
    if kind not in KINDS:
        raise InputError(f"key kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "rsa" and bits not in NEW_RSA_BITS:
        raise InputError(f"an RSA key has {' or '.join(map(str, NEW_RSA_BITS))} bits "
                         "(RFC 8301; more does not fit most DNS providers)")
    out_dir = Path(out_dir)
    private_file, dns_file = out_dir / f"{selector}.private", out_dir / f"{selector}.dns"
    for path in (private_file, dns_file):
        if path.exists():
            raise InputError("already exists; keygen never overwrites a key, whose public half "
                             "may be live in DNS: choose a new --selector", where=str(path))
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = key.public_key().public_bytes(  # p= is the DER SubjectPublicKeyInfo
            ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    else:
        key, bits = ed25519.Ed25519PrivateKey.generate(), 256
        public = key.public_key().public_bytes(  # RFC 8463 section 4.2: the raw 32 octets
            ser.Encoding.Raw, ser.PublicFormat.Raw)
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pair = KeyPair(selector, domain, kind, bits, private_file, dns_file,
                   f"v=DKIM1; k={kind}; p={base64.b64encode(public).decode('ascii')}")
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new(private_file, pem, 0o600)
        _write_new(dns_file, (pair.zone_line + "\n").encode("ascii"), 0o644)
    except OSError as exc:
        raise NewsletterError(f"cannot write the key: {exc.strerror}",
                              where=exc.filename or str(out_dir)) from exc
    return pair


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """O_EXCL: no overwrite even if the file appeared since the check; the mode is set before
    the first byte is written, so the private key is never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)  # exactly `mode`, whatever the umask
        out.write(data)


def config_lines(pair: KeyPair, root: Path) -> list[str]:
    """The [dkim] section for this key, key_file relative to newsletter.toml's folder."""
    key_file = os.path.relpath(pair.private_file.resolve(), root.resolve())
    if key_file.startswith(".."):
        key_file = str(pair.private_file.resolve())
    key_file = key_file.replace("\\", "\\\\").replace('"', '\\"')
    return ["[dkim]", f'selector = "{pair.selector}"', f'domain = "{pair.domain}"',
            f'key_file = "{key_file}"']
