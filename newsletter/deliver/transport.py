"""Transports: SMTP connections (smtp://, smtp+starttls://, smtps://) and the embedded Maildir.

Every reply is classified by its code, never by exception type: 2xx sent, 4xx deferred,
5xx failed, and a connection lost after the final dot is `unknown` (the server may have it).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.deliver.faults import crash_point
from newsletter.deliver.maildir import MaildirTransport
from newsletter.deliver.relay_stop import connect_hint, size_limit, stop_reason
from newsletter.deliver.smtp_data import data_payload
from newsletter.deliver.smtp_pipeline import (
    Lost,
    Outcome,
    Session,
    envelope,
    first_refusal,
    is_policy,
    reply_text,
)
from newsletter.errors import DeliveryError, InputError

__all__ = ["MaildirTransport", "Outcome", "SmtpSettings", "SmtpTransport", "parse_smtp_url"]
_is_policy = is_policy  # its old name here (tests/deliver/test_deliverability.py)
SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    timeout: float = 30.0

    @property
    def display(self) -> str:
        """For logs and summaries: never the password."""
        who = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{who}{self.host}:{self.port}"


def parse_smtp_url(url: str, password: str = "") -> SmtpSettings:
    """smtp://host:25, smtp+starttls://user@host:587, smtps://user@host:465 [?timeout=S]."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InputError("NEWSLETTER_SMTP_URL must start with "
                         f"{', '.join(s + '://' for s in SCHEMES)} (got {parts.scheme or 'none'})")
    if not parts.hostname:
        raise InputError("NEWSLETTER_SMTP_URL has no host (e.g. smtp+starttls://user@host:587)")
    if parts.password:
        raise InputError("NEWSLETTER_SMTP_URL must not carry the password; "
                         "put it in NEWSLETTER_SMTP_PASSWORD")
    if parts.username and parts.scheme == "smtp" and parts.hostname not in _LOOPBACK:
        raise InputError("NEWSLETTER_SMTP_URL: a login over plain smtp:// would send the password "
                         "in clear; use smtp+starttls:// or smtps://")
    try:
        port = parts.port or SCHEMES[parts.scheme]
        timeout = float(parse_qs(parts.query).get("timeout", ["30"])[0])
    except ValueError as exc:
        raise InputError(f"NEWSLETTER_SMTP_URL: bad port or timeout ({exc})") from exc
    return SmtpSettings(parts.scheme, parts.hostname, port, unquote(parts.username or ""),
                        password, timeout)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SmtpTransport:
    """One SMTP session, reused for many messages; reconnects when the server closes it.

    send() is one message (two round trips, or four commands one by one without PIPELINING);
    push(), end() and accepted() are its steps, for a sender that pipelines one message's
    end of data with the next envelope (workers: attempts.send_pipelined)."""

    def __init__(self, settings: SmtpSettings, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self.smtp: smtplib.SMTP | None = None
        self.session: Session | None = None

    @property
    def description(self) -> str:
        return self.settings.display

    @property
    def pipelining(self) -> bool:
        """The open session's server offers PIPELINING (RFC 2920)."""
        return self.session is not None and self.session.pipelining

    def open(self) -> None:
        """Connect, TLS and log in; any failure here stops the run before a claim."""
        s = self.settings
        context = ssl.create_default_context()  # certificate and host name verified
        try:
            if s.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                      context=context,
                                                      local_hostname=self.local_hostname)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout,
                                    local_hostname=self.local_hostname)
            smtp.ehlo()
            if s.scheme == "smtp+starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            reply = reply_text(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(f"{s.display}: login refused: {reply}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{s.display}: {exc}") from exc
        except ssl.SSLError as exc:
            raise DeliveryError(f"{s.display}: TLS failed: {exc.reason or exc}") from exc
        except smtplib.SMTPResponseException as exc:
            reply = reply_text(exc.smtp_code, exc.smtp_error)
            hint = connect_hint(exc.smtp_code, reply)
            raise DeliveryError(f"{s.display}: refused: {reply}{hint}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{s.display}: cannot connect: {exc}") from exc
        self.smtp, self.session = smtp, Session(smtp)

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = self.session = None

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = self.session = None

    def _rset(self) -> None:
        """After a refused MAIL or RCPT: the server still holds the transaction's start."""
        try:
            if self.session is not None:
                self.session.write(b"RSET\r\n")
                self.session.reply()
        except (OSError, Lost):
            self._drop()

    def _refused(self, code: int, message: bytes, stage: str) -> Outcome:
        text = reply_text(code, message)
        if code == 421:  # the server is closing the session: try again on a new one
            self._drop()
            return Outcome("retry" if stage != "DATA-END" else "deferred", code, text)
        if stage != "DATA-END":  # the reply to the final dot ends the transaction already
            self._rset()
        features = self.smtp.esmtp_features if self.smtp is not None else {}
        if stop := stop_reason(code, text, stage, size_limit(features)):
            return Outcome("stop", code, stop)  # about us: the run stops, the row stays pending
        if 400 <= code < 500:
            return Outcome("deferred", code, text)
        if is_policy(code, text) or (stage == "MAIL" and code >= 500):
            return Outcome("policy", code, text)
        return Outcome("failed", code, text)

    def push(self, data: bytes | Sequence[bytes], commands: bytes) -> Outcome | None:
        """Write a held message's data (after its 354; b"" if none) and the next envelope,
        opening the session first if it is closed (a DeliveryError if it cannot be). None, or
        the held message's outcome when the write failed (the next envelope's is "retry")."""
        if self.session is None:
            if data:  # its 354 came on a session now gone: never on a new one without it
                return Outcome("retry", 0, "connection lost before end of data")
            self.open()
        assert self.session is not None
        try:
            self.session.write(data, commands)
        except Lost as lost:
            self._drop()
            if lost.dot_out:  # the kernel had it all: the server may have taken it
                return Outcome("unknown", 0, f"connection lost after end of data: {lost}")
            return Outcome("retry", 0, f"connection lost before end of data: {lost}")
        return None

    def end(self) -> Outcome:
        """The reply to a message's final dot."""
        if self.session is None:
            return Outcome("unknown", 0, "connection lost after end of data")
        try:
            code, msg = self.session.reply()
        except OSError as exc:
            self._drop()
            # Even a reset proves nothing here: a proxy or load balancer may reset our side
            # after the server queued the message. Resending could duplicate it: unknown.
            return Outcome("unknown", 0, f"connection lost after end of data, no reply: {exc}")
        if code == 250:
            return Outcome("sent", code, reply_text(code, msg))
        return self._refused(code, msg, "DATA-END")

    def accepted(self) -> Outcome | None:
        """The replies to a pushed envelope: None once DATA has its 354 (the data may go),
        else the refusal ("retry" when the session is gone)."""
        if self.session is None:
            return Outcome("retry", 0, "connection closed before the envelope's replies")
        try:
            replies = self.session.envelope_replies()
            refused = first_refusal(replies)
            if refused is not None and replies[-1][0] == 354:
                self.session.write(b".\r\n")  # DATA taken despite a refused envelope: end it
                self.session.reply()  # (empty, no recipient: nothing is delivered)
        except (OSError, Lost) as exc:
            self._drop()
            return Outcome("retry", 0, f"connection lost before end of data: {exc}")
        return None if refused is None else self._refused(*refused)

    def _envelope_one_by_one(self, sender: str, recipient: str) -> Outcome | None:
        assert self.session is not None
        try:
            refused = first_refusal(self.session.envelope_one_by_one(sender, recipient))
        except (OSError, Lost) as exc:
            self._drop()
            return Outcome("retry", 0, f"connection lost before end of data: {exc}")
        return None if refused is None else self._refused(*refused)

    def send(self, sender: str, recipient: str, data: bytes) -> Outcome:
        """One message: its envelope (in one write with PIPELINING), then its data."""
        if self.session is None:
            self.open()
        assert self.session is not None
        if self.session.pipelining:
            refused = self.push(b"", envelope(sender, recipient)) or self.accepted()
        else:
            refused = self._envelope_one_by_one(sender, recipient)
        if refused is not None:
            return refused
        payload = data_payload(data)
        crash_point("mid-data")
        lost = self.push(payload, b"")
        if lost is not None:  # the final dot is the payload's end: it never left
            return lost
        crash_point("after-dot")
        return self.end()
