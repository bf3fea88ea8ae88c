"""The DKIM key kinds the tests sign with, each test module's own key pair of each kind."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest

from newsletter.deliver.dkimkeys import KeyPair, keygen

needs_nacl = pytest.mark.skipif(
    not hasattr(dkim, "nacl"), reason="Ed25519 needs PyNaCl: pip install 'dkimpy[ed25519]'")

# For @pytest.fixture(params=KINDS) and parametrize: Ed25519 only where dkimpy can verify it.
KINDS = ["rsa", pytest.param("ed25519", marks=needs_nacl)]


def key_pair(selector: str, domain: str, kind: str, factory: pytest.TempPathFactory) -> KeyPair:
    """A new key of `kind` for selector._domainkey.domain, in its own temporary folder."""
    folder: Path = factory.mktemp(kind) / "dkim"
    return keygen(selector, domain, folder, kind=kind)
