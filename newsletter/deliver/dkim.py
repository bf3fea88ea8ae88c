"""DKIM: sign each outgoing message (RFC 6376 relaxed/relaxed; RFC 8463 for Ed25519)."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.compose.wire import Wire, prepended
from newsletter.config import Config
from newsletter.deliver.dkim_body import body_digest, parts_digest
from newsletter.deliver.dkim_header import HeaderHasher
from newsletter.errors import ConfigError, InputError

# cryptography is imported inside the functions that use it: the CLI imports this module (via
# dkimkeys) to register `newsletter dkim`, and every other command would pay for it. A second
# import is a dict lookup.

KINDS = ("rsa", "ed25519")
# Signed when present. The first eight are what DESIGN.md promises receivers; the rest are the
# RFC 6376 section 5.4.1 recommendations that build_message writes (Cc it never writes: see
# OVERSIGNED_HEADERS).
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"reply-to", b"cc", b"mime-version", b"content-type",
    b"content-language",
)
# Over-signed, all of them: each name is listed in h= once more than it occurs, so a copy added
# in transit breaks the signature (RFC 6376 section 8.15). Verifiers take the bottom-most copy
# while clients may show the top one, and every one of these is shown or acted on: From and
# Subject are read, To/Date/Message-ID/Reply-To shape the reply, List-Unsubscribe(-Post) is
# what a one-click POST goes to, Content-Type decides what is rendered. A field the message
# lacks (Cc) is listed once, as a null string, so none can be added.
OVERSIGNED_HEADERS = SIGNED_HEADERS
# RFC 8301 section 3.2: verifiers ignore RSA keys under 1024 bits; new keys get 2048.
MIN_RSA_BITS, NEW_RSA_BITS = 1024, (2048, 4096)

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def is_dns_name(value: str) -> bool:
    """A selector or domain as RFC 6376 section 3.1 allows: dot-separated letters, digits, '-'."""
    return len(value) <= 253 and bool(_DNS_NAME_RE.fullmatch(value))


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages for one selector and domain; the key is read and checked once, at load.

    The signature is computed here (RFC 6376 relaxed/relaxed, RFC 8463 for Ed25519) with the
    key held by `cryptography` (OpenSSL): dkimpy's pure-Python RSA takes ~13 ms a message,
    OpenSSL under 1 ms. dkimpy verifies our signatures in the tests.
    """

    selector: str
    domain: str
    kind: str  # "rsa" or "ed25519"
    key_file: Path
    key: Any = field(repr=False)  # a cryptography private key object

    @classmethod
    def load(cls, selector: str, domain: str, key_file: Path) -> DkimSigner:
        kind, key = _read_key(key_file)
        return cls(selector, domain, kind, key_file, key)

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if self.kind == "rsa" else b"ed25519-sha256"

    def sign(self, message: bytes, *, now: int | None = None) -> bytes:
        """The message with a DKIM-Signature header field prepended (CRLF line ends)."""
        end = message.find(b"\r\n\r\n")
        if end < 0:
            raise InputError(_NO_BLANK_LINE)
        field_ = self._field(message[:end + 2], body_digest(message, end + 4), now)
        # A Wire stays one: the transport reuses its shared, already dot-stuffed parts.
        return prepended(message, field_) if isinstance(message, Wire) else field_ + message

    def signature_field(self, head: bytes, parts: Sequence[bytes], *,
                        now: int | None = None) -> bytes:
        """The DKIM-Signature field (ending with CRLF) to put on top of the message head +
        b"".join(parts), computed without joining them: head is the header fields and the
        blank line after them, parts the body as compose.message.assemble_parts makes it."""
        if not head.endswith(b"\r\n\r\n"):
            raise InputError(_NO_BLANK_LINE)
        return self._field(head[:-2], parts_digest(parts), now)

    def _field(self, fields: bytes, body_hash: bytes, now: int | None) -> bytes:
        """The signature field for header fields (each ending with CRLF) and a body hash."""
        plan, data = _HEADERS.signed_data(fields)
        fixed, fixed_canonical = self._fixed_tags
        t = b"t=" + str(int(time.time()) if now is None else now).encode("ascii")
        bh = b"bh=" + base64.b64encode(body_hash)
        # RFC 6376 3.7: the signature's own field last, relaxed, with b= empty and no CRLF;
        # relaxed turns each fold (";" CRLF TAB) into "; " and h='s folds into one SP.
        data += b"; ".join([fixed_canonical, t, plan.h_canonical, bh, b"b="])
        value = base64.b64encode(self._sign_data(data))
        folded = b"\r\n\t".join([value[i:i + 72] for i in range(0, len(value), 72)])
        return b";\r\n\t".join([fixed, t, plan.h_folded, bh, b"b=" + folded]) + b"\r\n"

    @functools.cached_property
    def _fixed_tags(self) -> tuple[bytes, bytes]:
        """The field's start, the same in every signature of this signer: as written, and as
        relaxed canonicalisation reads it (the field name lower-case, each fold one SP)."""
        tags = [b"v=1", b"a=" + self.algorithm, b"c=relaxed/relaxed",
                b"d=" + self.domain.encode("ascii"), b"s=" + self.selector.encode("ascii")]
        return (b"DKIM-Signature: " + b";\r\n\t".join(tags),
                b"dkim-signature:" + b"; ".join(tags))

    def _sign_data(self, data: bytes) -> bytes:
        """The signature over the header hash input; cryptography releases the interpreter
        lock while OpenSSL signs, so the send's other threads run meanwhile."""
        if self.kind == "rsa":
            return self.key.sign(data, *_rsa_scheme())  # PKCS#1 v1.5 over SHA-256 (3.3.1)
        return self.key.sign(hashlib.sha256(data).digest())  # RFC 8463 3: over the SHA-256


@functools.cache
def _rsa_scheme() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), hashes.SHA256()


_NO_BLANK_LINE = "cannot DKIM-sign the message: no blank line after the header"
_HEADERS = HeaderHasher(SIGNED_HEADERS, frozenset(OVERSIGNED_HEADERS))


def signer_from_config(config: Config) -> DkimSigner | None:
    """The send's signer, made once; None when newsletter.toml has no [dkim] section."""
    if config.dkim_key_file is None:
        return None
    for key, value in (("selector", config.dkim_selector), ("domain", config.dkim_domain)):
        if not is_dns_name(value):
            raise ConfigError(f"'dkim.{key}' must be a DNS name such as 'nl2026' or "
                              f"'example.org', not {value!r}", where=str(config.source))
    return DkimSigner.load(config.dkim_selector, config.dkim_domain, config.dkim_key_file)


def _key_error(path: Path, text: str) -> ConfigError:
    return ConfigError(f"{text} (the key named by 'dkim.key_file')".replace("\n", " "),
                       where=str(path))


def _read_key(path: Path) -> tuple[str, Any]:
    """Any PEM private key cryptography reads, as (kind, key object)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise _key_error(path, "no such file (make one with `newsletter dkim keygen`)") from exc
    except OSError as exc:
        raise _key_error(path, f"cannot read: {exc.strerror}") from exc
    try:
        key = ser.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's way of saying "it needs a password"
        raise _key_error(path, "the key is encrypted; a send runs unattended, so store it "
                               "unencrypted, readable only by the sender (mode 0600)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _key_error(path, "not a PEM RSA or Ed25519 private key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise _key_error(path, f"an RSA key of {key.key_size} bits; receivers ignore DKIM "
                                   f"keys under {MIN_RSA_BITS} (RFC 8301): make a 2048-bit one")
        return "rsa", key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519", key
    kind = type(key).__name__.removesuffix("PrivateKey").lstrip("_")
    raise _key_error(path, f"a key of type {kind}; DKIM signs with RSA or Ed25519 (RFC 8463)")
