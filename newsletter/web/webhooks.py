"""Provider webhooks on the return path: /webhooks/<secret>/ses|postmark|mailgun for `serve`.

Hostile by default: unknown secrets are 404s compared in constant time, bodies are capped,
only signed or authenticated JSON changes anything, and every change is committed with its
processed_reports row before the 200 (a report counts once by the bytes its signature covers).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, request

from newsletter.audience import sns
from newsletter.audience.bounce_report import Report
from newsletter.audience.bounces import BounceRun, already_processed, record_report
from newsletter.audience.mailgun_payload import mailgun_report
from newsletter.audience.postmark_payload import postmark_report
from newsletter.audience.ses_payload import ses_report
from newsletter.audience.webhook_payloads import MalformedPayload
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.store.handles import StoreHandles
from newsletter.web.site import app_handles

log = logging.getLogger("newsletter.webhooks")
MAX_BODY = 256 * 1024  # SNS messages are at most 256 KB; provider events are a few KB
MAILGUN_MAX_AGE = 300  # seconds: Mailgun's timestamp + token are replayable, so keep it short
_SECRET_RE = re.compile(r"[A-Za-z0-9_~.-]{16,200}")


def register_webhooks(app: Flask, config: Config, *, secret: str | None = None,
                      fetcher: sns.CertificateFetcher | None = None,
                      confirm: Callable[[str], None] = sns.confirm_subscription,
                      clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Mount the webhook routes when NEWSLETTER_WEBHOOK_SECRET is set; without it they do
    not exist. `fetcher` and `confirm` reach AWS; tests pass local stand-ins."""
    secret = os.environ.get("NEWSLETTER_WEBHOOK_SECRET", "") if secret is None else secret
    if not secret:
        return
    if not _SECRET_RE.fullmatch(secret):
        raise ConfigError("must be 16 to 200 characters of A-Z a-z 0-9 _ ~ . -",
                          where="NEWSLETTER_WEBHOOK_SECRET")
    hooks = _Hooks(config, secret, fetcher or sns.CertificateFetcher(), confirm, clock,
                   app_handles(app, config))
    bp = Blueprint("webhooks", __name__)
    bp.add_url_rule("/webhooks/<given>/<any(ses,postmark,mailgun):provider>",
                    view_func=hooks.receive, methods=["POST"])
    prefix = urlsplit(config.base_url).path.rstrip("/")
    app.register_blueprint(bp, url_prefix=prefix or None)
    # serve caps every other route at a form's size; SNS messages may be 256 KB.
    app.extensions.setdefault("newsletter.body_limits", {})[bp.name] = MAX_BODY


class _Rejected(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


class _Hooks:
    """The three receivers; each turns one request into at most one committed report."""

    def __init__(self, config: Config, secret: str, fetcher: sns.CertificateFetcher,
                 confirm: Callable[[str], None], clock: Callable[[], datetime],
                 handles: StoreHandles) -> None:
        self.config, self.secret, self.fetcher = config, secret.encode(), fetcher
        self.handles = handles  # serve's per-process pool on PostgreSQL
        self.confirm, self.clock = confirm, clock
        self.mailgun_key = os.environ.get("NEWSLETTER_MAILGUN_SIGNING_KEY", "").encode()
        self.postmark_auth = os.environ.get("NEWSLETTER_POSTMARK_AUTH", "")
        self.tokens = _TokenMemory(MAILGUN_MAX_AGE)

    def receive(self, given: str, provider: str) -> Response:
        if not hmac.compare_digest(given.encode(), self.secret) or \
                (provider == "mailgun" and not self.mailgun_key):
            return _answer(404, "not found")
        try:
            body = _body()
            handler = {"ses": self._ses, "postmark": self._postmark,
                       "mailgun": self._mailgun}[provider]
            return handler(body)
        except _Rejected as exc:
            if exc.status >= 400:
                log.warning("webhook %s refused (%d): %s", provider, exc.status, exc.text)
            return _answer(exc.status, exc.text)

    # --- providers ---------------------------------------------------------------------------

    def _ses(self, body: bytes) -> Response:
        fields = _json(body)
        try:
            message = sns.verify_message(fields, self.config.webhook_sns_topics, self.fetcher)
        except sns.SnsError as exc:
            raise _Rejected(403, f"not a verified SNS message: {exc}") from exc
        if message.type == "SubscriptionConfirmation":
            return self._confirm(message)
        if message.type == "UnsubscribeConfirmation":
            log.warning("SNS topic %s unsubscribed this endpoint", message.topic)
            return _answer(200, "noted")
        try:
            inner = json.loads(message.message)
            report = ses_report(inner)
        except (ValueError, RecursionError, MalformedPayload):
            return _answer(200, "ignored: not an SES notification")  # a signed stranger
        return self._apply("ses", message.signed, report)

    def _confirm(self, message: sns.SnsMessage) -> Response:
        if not sns.is_sns_url(message.subscribe_url, pem=False):
            raise _Rejected(403, "SubscribeURL is not an Amazon SNS URL")
        try:
            self.confirm(message.subscribe_url)
        except sns.SnsError as exc:
            raise _Rejected(502, str(exc)) from exc
        log.info("SNS subscription to %s confirmed", message.topic)
        return _answer(200, "subscription confirmed")

    def _postmark(self, body: bytes) -> Response:
        # Postmark signs nothing: the secret path, plus HTTP basic auth when configured.
        if self.postmark_auth and not _basic_auth_ok(self.postmark_auth):
            response = _answer(401, "authentication required")
            response.headers["WWW-Authenticate"] = 'Basic realm="newsletter webhooks"'
            return response
        return self._apply("postmark", body, _parsed(postmark_report, _json(body)))

    def _mailgun(self, body: bytes) -> Response:
        payload = _json(body)
        signature = payload.get("signature") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not isinstance(signature, dict):
            raise _Rejected(400, "malformed: 'signature' must be an object")
        signed = self._mailgun_signed(signature, hashlib.sha256(body).digest())
        return self._apply("mailgun", signed, _parsed(mailgun_report, payload.get("event-data")))

    def _mailgun_signed(self, signature: dict, digest: bytes) -> bytes:
        """HMAC-SHA256(signing key, timestamp + token), fresh and not replayed."""
        stamp, token, given = (signature.get(k) for k in ("timestamp", "token", "signature"))
        if not (isinstance(stamp, str) and isinstance(token, str) and isinstance(given, str)
                and all(0 < len(v) <= 200 for v in (stamp, token, given))):
            raise _Rejected(400, "malformed: signature needs timestamp, token and signature")
        expected = hmac.new(self.mailgun_key, (stamp + token).encode(), hashlib.sha256)
        # bytes: compare_digest raises TypeError on a str that is not ASCII (a 500, not a 403)
        if not hmac.compare_digest(expected.hexdigest().encode(), given.lower().encode()):
            raise _Rejected(403, "Mailgun signature does not verify")
        if not stamp.isdigit() or abs(self.clock().timestamp() - int(stamp)) > MAILGUN_MAX_AGE:
            raise _Rejected(403, "Mailgun timestamp is more than 5 minutes off")
        if not self.tokens.first_use(token, digest):
            raise _Rejected(403, "Mailgun token already used for another payload")
        return (stamp + token).encode()

    # --- effects -----------------------------------------------------------------------------

    def _apply(self, provider: str, signed: bytes, report: Report | None) -> Response:
        if report is None:
            return _answer(200, "ignored: not an event we act on")
        key = "sha256:" + hashlib.sha256(signed).hexdigest()
        run = BounceRun()
        with self.handles.db() as conn, conn.transaction():
            if already_processed(conn, key):
                return _answer(200, "already processed")
            record_report(conn, key, report, self.config, self.clock(), run,
                          f"webhook {provider}")
        for recipient in report.recipients:  # type: ignore[attr-defined]
            if recipient.klass == "ours":
                log.warning("webhook %s: sender-side failure for %s: %s %s", provider,
                            recipient.address, recipient.status, recipient.diagnostic)
        for change in run.changes:
            log.info("webhook %s: %s %s %s", provider, change.status, change.email, change.why)
        return _answer(200, "ok")


def _body() -> bytes:
    """The request body, refused with 413 past MAX_BODY before reading the rest."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _Rejected(413, "body too large")
    media = request.mimetype
    # SNS posts JSON as text/plain; charset=UTF-8 (sns-message-and-json-formats).
    if media not in ("application/json", "text/plain"):
        raise _Rejected(415, "JSON only")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise _Rejected(413, "body too large")
    return body


def _json(body: bytes) -> object:
    """Strict JSON: UTF-8, no NaN, no repeated keys (a signed field must mean one thing)."""
    def no_repeats(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("a key is repeated")
        return dict(pairs)

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=no_repeats,
                          parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Rejected(400, f"malformed JSON: {str(exc)[:100]}") from exc


def _parsed(parse: Callable[[object], Report | None], payload: object) -> Report | None:
    try:
        return parse(payload)
    except MalformedPayload as exc:
        raise _Rejected(400, f"malformed: {exc}") from exc


def _basic_auth_ok(expected: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    try:
        given = base64.b64decode(value.strip(), validate=True) if scheme.lower() == "basic" else b""
    except ValueError:
        given = b""
    return hmac.compare_digest(given, expected.encode())


def _answer(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


class _TokenMemory:
    """Mailgun tokens seen in the last few minutes, with the digest of the body they came with:
    a provider's retry repeats both; a replay with another body is refused."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.seen: dict[str, tuple[float, bytes]] = {}
        self.lock = threading.Lock()

    def first_use(self, token: str, digest: bytes) -> bool:
        now = time.monotonic()
        with self.lock:
            for old in [t for t, (at, _) in self.seen.items() if now - at > 2 * self.max_age]:
                del self.seen[old]
            if token in self.seen:
                return self.seen[token][1] == digest
            self.seen[token] = (now, digest)
            return True
