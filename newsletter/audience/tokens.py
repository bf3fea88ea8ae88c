"""Link tokens bound to an address or id, a list and a purpose; sealed, opaque, rotatable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Used only when NEWSLETTER_SECRET is unset and nothing leaves this machine (Maildir, build).
DEV_SECRET = "dev-secret-not-for-real-mail"


def secret_from_env() -> tuple[str, bool]:
    """(secret, is_real). The development secret must never sign mail sent over SMTP."""
    secret = os.environ.get("NEWSLETTER_SECRET", "")
    return (secret, True) if secret else (DEV_SECRET, False)


def verification_secrets(now: datetime | None = None,
                         environ: dict[str, str] | None = None) -> list[str]:
    """Secrets whose tokens are accepted now: the current one, and during a key rotation the
    previous one (NEWSLETTER_SECRET_PREVIOUS) until NEWSLETTER_SECRET_PREVIOUS_UNTIL."""
    env = os.environ if environ is None else environ
    secrets = [env.get("NEWSLETTER_SECRET") or DEV_SECRET]
    previous = env.get("NEWSLETTER_SECRET_PREVIOUS", "")
    until = env.get("NEWSLETTER_SECRET_PREVIOUS_UNTIL", "")
    if previous:
        try:
            deadline = datetime.fromisoformat(until) if until else None
        except ValueError:
            deadline = None  # a malformed date ends the grace period rather than extend it
        if deadline is not None:
            deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
            if (now or datetime.now(UTC)) < deadline:
                secrets.append(previous)
    return secrets


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """One spelling per token: validate refuses characters outside base64url, and the
    re-encoding refuses unused padding bits set otherwise (16 spellings of one last char)."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


# Version 2 tokens keep the version 1 shape (data.mac, data.stamp.mac) but the data part is
# the address sealed with AES-SIV (RFC 5297) and the MAC is the SIV tag: deterministic, so a
# reader's link is the same in every issue, and nothing in it reads back without the secret.
# Version 1 data was base64 text, which never starts with "v" (0xBC-0xBF are not UTF-8 lead
# bytes), so the prefix cannot be mistaken for it.
V2 = "v2"
_TAG_BYTES = 16
_PAD = 8  # the address is padded with NULs to a multiple of 8 octets: its length stays hidden


@lru_cache(maxsize=64)
def _siv(secret: str, list_id: str) -> AESSIV:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=f"newsletter token v2\0{list_id}".encode()).derive(secret.encode())
    return AESSIV(key)


def _seal(secret: str, list_id: str, email: str, context: list[bytes]) -> tuple[str, str]:
    data = email.encode("utf-8")
    sealed = _siv(secret, list_id).encrypt(data + b"\0" * (-len(data) % _PAD), context)
    return V2 + _b64(sealed[_TAG_BYTES:]), _b64(sealed[:_TAG_BYTES])


def _open(secrets: list[str], list_id: str, data: str, tag: str,
          context: list[bytes]) -> str | None:
    try:
        mac, sealed_data = _unb64(tag), _unb64(data.removeprefix(V2))
    except ValueError:
        return None
    if len(mac) != _TAG_BYTES or not sealed_data:
        return None
    sealed = mac + sealed_data
    found: str | None = None
    for secret in secrets:  # no early exit: every secret is tried
        try:
            plain = _siv(secret, list_id).decrypt(sealed, context)
        except InvalidTag:
            continue
        found = found or plain.rstrip(b"\0").decode("utf-8", errors="replace")
    return found


def _mac(secret: str, list_id: str, email: str, purpose: str = "unsubscribe",
         issued: str = "") -> str:
    message = f"{purpose}\0{list_id}\0{email.lower()}\0{issued}".encode()
    if purpose == "unsubscribe" and not issued:
        message = f"unsubscribe\0{list_id}\0{email.lower()}".encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:18])


def make_token(secret: str, list_id: str, email: str) -> str:
    """Unsubscribe token: the address sealed (AES-SIV) for this list; no personal data."""
    data, tag = _seal(secret, list_id, email, [b"unsubscribe"])
    return f"{data}.{tag}"


def verify_token(secrets: list[str], list_id: str, token: str) -> str | None:
    """The address an unsubscribe token was made for, if any secret made it; else None.
    Version 1 tokens (address in base64, then a MAC) verify forever: sent links keep working."""
    pieces = token.split(".")
    if len(pieces) == 2 and token.isascii() and pieces[0].startswith(V2):
        return _open(secrets, list_id, pieces[0], pieces[1], [b"unsubscribe"])
    parts = _split(token, 2)
    if parts is None:
        return None
    email, (mac,) = parts
    return email if _any_match(secrets, mac, lambda s: _mac(s, list_id, email)) else None


def make_confirm_token(secret: str, list_id: str, email: str, issued: datetime) -> str:
    """Double opt-in token: the address sealed with its issue time (seconds, in clear)."""
    stamp = str(int(issued.timestamp()))
    data, tag = _seal(secret, list_id, email, [b"confirm", stamp.encode()])
    return f"{data}.{stamp}.{tag}"


def verify_confirm_token(secrets: list[str], list_id: str, token: str, now: datetime,
                         max_age_seconds: int) -> str | None:
    """The address, if the token is genuine and younger than max_age_seconds; else None."""
    pieces = token.split(".")
    if len(pieces) != 3 or not token.isascii():
        return None
    stamp = pieces[1]
    if not stamp.isdigit() or not 0 <= now.timestamp() - int(stamp) <= max_age_seconds:
        return None
    if pieces[0].startswith(V2):
        return _open(secrets, list_id, pieces[0], pieces[2], [b"confirm", stamp.encode()])
    parts = _split(token, 3)
    if parts is None:
        return None
    email, (_, mac) = parts
    ok = _any_match(secrets, mac, lambda s: _mac(s, list_id, email, "confirm", stamp))
    return email if ok else None


MANAGE_SECONDS = 24 * 3600  # a data link from the mail works for a day


def make_manage_token(secret: str, list_id: str, email: str, issued: datetime) -> str:
    """The data-page token mailed on request: the address sealed with purpose b"manage" and
    its issue time, so the unsubscribe token (in every forwarded issue) never opens it."""
    stamp = str(int(issued.timestamp()))
    data, tag = _seal(secret, list_id, email, [b"manage", stamp.encode()])
    return f"{data}.{stamp}.{tag}"


def verify_manage_token(secrets: list[str], list_id: str, token: str,
                        now: datetime) -> str | None:
    """The address of a genuine manage token younger than MANAGE_SECONDS; else None."""
    pieces = token.split(".")
    if len(pieces) != 3 or not token.isascii() or not pieces[0].startswith(V2):
        return None
    stamp = pieces[1]
    if not stamp.isdigit() or not 0 <= now.timestamp() - int(stamp) <= MANAGE_SECONDS:
        return None
    return _open(secrets, list_id, pieces[0], pieces[2], [b"manage", stamp.encode()])


def _split(token: str, count: int) -> tuple[str, list[str]] | None:
    pieces = token.split(".")
    if len(pieces) != count or not all(p.isascii() for p in pieces):
        return None  # hmac.compare_digest raises TypeError on non-ASCII str
    try:
        email = _unb64(pieces[0]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return email, pieces[1:]


def _any_match(secrets: list[str], mac: str, expected) -> bool:  # noqa: ANN001
    ok = False
    for secret in secrets:  # no early exit: every secret is compared, in constant time each
        ok |= hmac.compare_digest(mac, expected(secret))
    return ok


def confirm_token_issued(token: str) -> datetime | None:
    """When a (verified) confirm token was made."""
    pieces = token.split(".")
    if len(pieces) != 3 or not pieces[1].isdigit():
        return None
    return datetime.fromtimestamp(int(pieces[1]), UTC)


# VERP local parts are at most 64 octets (RFC 5321 4.5.3.1.1) and MTAs may lower-case them, so
# an id token is lower-case base32: a 96-bit MAC over the id, then the id (8 bytes) encrypted
# with a pad derived from that MAC (an SIV-style construction): opaque, deterministic, 32 chars.
_ID_MAC_BYTES = 12
_ID_BYTES = 8


@lru_cache(maxsize=64)
def _id_key(secret: str, list_id: str) -> bytes:
    return hmac.new(secret.encode(), f"id-token\0{list_id}".encode(), hashlib.sha256).digest()


def _id_mac(key: bytes, raw_id: bytes) -> bytes:
    return hmac.new(key, b"mac\0" + raw_id, hashlib.sha256).digest()[:_ID_MAC_BYTES]


def _id_pad(key: bytes, mac: bytes) -> bytes:
    return hmac.new(key, b"pad\0" + mac, hashlib.sha256).digest()[:_ID_BYTES]


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def make_id_token(secret: str, list_id: str, subscriber_id: int) -> str:
    """A 32-character lower-case base32 token for a subscriber id, opaque and unguessable."""
    if not 0 <= subscriber_id < 2 ** (8 * _ID_BYTES):
        raise ValueError(f"subscriber id out of range: {subscriber_id}")
    key = _id_key(secret, list_id)
    raw_id = subscriber_id.to_bytes(_ID_BYTES, "big")
    mac = _id_mac(key, raw_id)
    sealed = mac + _xor(raw_id, _id_pad(key, mac))
    return base64.b32encode(sealed).decode("ascii").rstrip("=").lower()


def verify_id_token(secrets: list[str], list_id: str, token: str) -> int | None:
    """The subscriber id an id token was made for under any of secrets (any case), else None."""
    if not token.isascii() or len(token) != 32 or not token.isalnum():
        return None
    try:
        sealed = base64.b32decode(token.upper())
    except ValueError:
        return None
    mac, hidden = sealed[:_ID_MAC_BYTES], sealed[_ID_MAC_BYTES:]
    found: int | None = None
    for secret in secrets:  # no early exit: every secret is tried, each compare constant-time
        key = _id_key(secret, list_id)
        raw_id = _xor(hidden, _id_pad(key, mac))
        if hmac.compare_digest(mac, _id_mac(key, raw_id)) and found is None:
            found = int.from_bytes(raw_id, "big")
    return found
