"""HMAC-signed unsubscribe tokens bound to an address and a list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# Used only when NEWSLETTER_SECRET is unset and nothing leaves this machine (Maildir, build).
DEV_SECRET = "dev-secret-not-for-real-mail"


def secret_from_env() -> tuple[str, bool]:
    """(secret, is_real). The development secret must never sign mail sent over SMTP."""
    secret = os.environ.get("NEWSLETTER_SECRET", "")
    return (secret, True) if secret else (DEV_SECRET, False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, list_id: str, email: str) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe\0{list_id}\0{email.lower()}".encode(),
                      hashlib.sha256).digest()
    return _b64(digest[:18])


def make_token(secret: str, list_id: str, email: str) -> str:
    """URL-safe token: the address (base64url) and a MAC over list and address."""
    return f"{_b64(email.encode())}.{_mac(secret, list_id, email)}"


def verify_token(secrets: list[str], list_id: str, token: str) -> str | None:
    """The address a token was made for, if any of the secrets signed it; else None."""
    try:
        encoded, mac = token.split(".", 1)
        email = _unb64(encoded).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if not mac.isascii():  # hmac.compare_digest raises TypeError on non-ASCII str
        return None
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(mac, _mac(secret, list_id, email))
    return email if ok else None
