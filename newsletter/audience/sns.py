"""Amazon SNS HTTP(S) messages: signature verification (SignatureVersion 1 and 2), topic check."""

from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.errors import NewsletterError

# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html: the fields
# signed, in byte order, for each message type ("Subject" only when present).
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}  # SHA1withRSA, SHA256withRSA
# sns.<region>.amazonaws.com and nothing else: no userinfo, no port, no look-alike suffix.
_SNS_HOST_RE = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d{1,2}\.amazonaws\.com")
_PEM_PATH_RE = re.compile(r"/[A-Za-z0-9_.-]+\.pem")
_ARN_RE = re.compile(r"arn:aws:sns:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}")
MAX_CERT_BYTES = 16 * 1024


class SnsError(NewsletterError):
    """A message that is not a genuine SNS message for one of our topics."""


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: what the webhook acts on."""

    type: str
    topic: str
    message: str
    subscribe_url: str
    signed: bytes  # the canonical string that was signed: a report counts once by it


def is_sns_url(url: str, *, pem: bool) -> bool:
    """https://sns.<region>.amazonaws.com/...: the only place certificates and confirmations
    may come from. The netloc must be the bare host, so userinfo and ports fail."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme != "https" or not _SNS_HOST_RE.fullmatch(parts.netloc):
        return False
    if not url.isascii() or any(c in url for c in "\\ \t\r\n"):
        return False
    if pem:
        return bool(_PEM_PATH_RE.fullmatch(parts.path)) and not parts.query and not parts.fragment
    return parts.path in ("", "/") and not parts.fragment


def valid_topic_arn(arn: str) -> bool:
    return bool(_ARN_RE.fullmatch(arn))


class CertificateFetcher:
    """Fetches signing certificates over verified HTTPS, capped and cached in memory.

    `allowed` is the URL check applied before any connection; its production default admits
    only SNS's own hosts. Tests pass one that admits their local HTTPS server.
    """

    def __init__(self, *, allowed: Callable[[str], bool] = lambda u: is_sns_url(u, pem=True),
                 verify: ssl.SSLContext | str | bool = True, timeout: float = 5.0,
                 max_bytes: int = MAX_CERT_BYTES, cache_size: int = 32) -> None:
        self.allowed, self.verify, self.timeout = allowed, verify, timeout
        self.max_bytes, self.cache_size = max_bytes, cache_size
        self._cache: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        if not self.allowed(url):
            raise SnsError("SigningCertURL is not an Amazon SNS certificate URL", where=url[:200])
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        key = _rsa_key(self._download(url), url)
        with self._lock:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = key
        return key

    def _download(self, url: str) -> bytes:
        body = b""
        try:
            with httpx.stream("GET", url, timeout=self.timeout, verify=self.verify,
                              follow_redirects=False) as reply:
                if reply.status_code != 200:
                    raise SnsError(f"certificate fetch answered {reply.status_code}", where=url)
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise SnsError("certificate is larger than 16 KB", where=url)
        except httpx.HTTPError as exc:
            raise SnsError(f"certificate fetch failed: {type(exc).__name__}", where=url) from exc
        return body


def _rsa_key(pem: bytes, url: str) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError as exc:
        raise SnsError("not a PEM certificate", where=url) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsError("certificate key is not RSA", where=url)
    return key


def canonical_string(fields: dict) -> bytes:
    """The string SNS signs: name\\nvalue\\n for each signed field, in byte order."""
    names = _SIGNED_FIELDS.get(fields.get("Type"))  # type: ignore[arg-type]
    if names is None:
        raise SnsError(f"unknown SNS message Type {str(fields.get('Type'))[:40]!r}")
    lines = []
    for name in names:
        value = fields.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SnsError(f"SNS message field {name} is missing")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify_message(fields: object, topics: tuple[str, ...],
                   fetcher: CertificateFetcher) -> SnsMessage:
    """Check topic, signature version and signature; raise SnsError on any doubt."""
    if not isinstance(fields, dict):
        raise SnsError("an SNS message must be a JSON object")
    topic = fields.get("TopicArn")
    if not isinstance(topic, str) or topic not in topics:
        # Checked before any certificate is fetched: a stranger's topic costs us nothing.
        raise SnsError("TopicArn is not in [webhooks] sns_topics", where=str(topic)[:200])
    version = fields.get("SignatureVersion")
    if version not in _HASHES:
        raise SnsError(f"unsupported SignatureVersion {str(version)[:10]!r}")
    signed = canonical_string(fields)
    cert_url, signature = fields.get("SigningCertURL"), fields.get("Signature")
    if not isinstance(cert_url, str) or not isinstance(signature, str):
        raise SnsError("SigningCertURL or Signature is missing")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsError("Signature is not base64") from exc
    key = fetcher.public_key(cert_url)
    try:
        key.verify(raw, signed, padding.PKCS1v15(), _HASHES[version]())
    except InvalidSignature as exc:
        raise SnsError("signature does not verify", where=cert_url) from exc
    return SnsMessage(fields["Type"], topic, fields["Message"],
                      fields.get("SubscribeURL", ""), signed)


def confirm_subscription(url: str, *, timeout: float = 10.0) -> None:
    """GET the SubscribeURL of a verified SubscriptionConfirmation (SNS hosts only)."""
    if not is_sns_url(url, pem=False):
        raise SnsError("SubscribeURL is not an Amazon SNS URL", where=url[:200])
    try:
        reply = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise SnsError(f"subscription confirmation failed: {type(exc).__name__}",
                       where=url[:200]) from exc
    if reply.status_code != 200:
        raise SnsError(f"subscription confirmation answered {reply.status_code}", where=url[:200])
