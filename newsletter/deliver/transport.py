"""Transports: SMTP connections (smtp://, smtp+starttls://, smtps://) and the embedded Maildir.

Every reply is classified by its code, never by exception type: 2xx sent, 4xx deferred,
5xx failed, and a connection lost after the final dot is `unknown` (the server may have it).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.audience.sender_rules import is_sender_refusal
from newsletter.deliver.faults import crash_point
from newsletter.deliver.smtp_data import data_payload
from newsletter.errors import DeliveryError, InputError

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class Outcome:
    """What happened to one message. kind: sent, deferred, failed, unknown, retry, policy."""

    kind: str
    code: int
    reply: str


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


def _reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"[:400]


def _is_policy(code: int, text: str) -> bool:
    """A refusal that blames us (our IP or domain blocked, SPF/DKIM/DMARC, content), by the
    same rules `bounces` uses for the class `ours`: a "5.7.1 user unknown" is the reader's,
    not a reason to stop the run (RFC 3463 5.7.x alone says too little)."""
    return is_sender_refusal(code, text)


class SmtpTransport:
    """One SMTP session, reused for many messages; reconnects when the server closes it."""

    def __init__(self, settings: SmtpSettings, local_hostname: str | None = None) -> None:
        self.settings = settings
        self.local_hostname = local_hostname
        self.smtp: smtplib.SMTP | None = None

    @property
    def description(self) -> str:
        return self.settings.display

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
            reply = _reply_text(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(f"{s.display}: login refused: {reply}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{s.display}: {exc}") from exc
        except ssl.SSLError as exc:
            raise DeliveryError(f"{s.display}: TLS failed: {exc.reason or exc}") from exc
        except smtplib.SMTPResponseException as exc:
            reply = _reply_text(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(f"{s.display}: refused: {reply}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{s.display}: cannot connect: {exc}") from exc
        self.smtp = smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def _rset(self) -> None:
        try:
            if self.smtp is not None:
                self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _refused(self, code: int, message: bytes, stage: str) -> Outcome:
        text = _reply_text(code, message)
        if code == 421:  # the server is closing the session: try again on a new one
            self._drop()
            return Outcome("retry", code, text)
        self._rset()
        if 400 <= code < 500:
            return Outcome("deferred", code, text)
        if _is_policy(code, text) or (stage == "MAIL" and code >= 500):
            return Outcome("policy", code, text)
        return Outcome("failed", code, text)

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> Outcome | None:
        """MAIL, RCPT and DATA; None once the server says 354 (go ahead), else the refusal.

        Commands are written directly, not with smtp.mail()/rcpt(): their quoteaddr()
        re-parses each address with email.utils (~0.4 ms each); ours are validated ASCII
        addr-specs already. With PIPELINING (RFC 2920) all three go in one write and the
        three replies are read after, one round trip instead of three.
        """
        commands = [f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA"]
        if smtp.has_extn("pipelining"):
            smtp.send("".join(c + "\r\n" for c in commands))
            replies = [smtp.getreply() for _ in commands]
        else:
            replies = []
            for command in commands:
                smtp.send(command + "\r\n")
                replies.append(smtp.getreply())
                if replies[-1][0] not in (250, 251, 354):
                    break
        accepted = (250,), (250, 251), (354,)
        for (code, msg), ok, stage in zip(replies, accepted, ("MAIL", "RCPT", "DATA"),
                                          strict=False):
            if code not in ok:
                if replies[-1][0] == 354:  # DATA taken despite a refused envelope: end it empty
                    smtp.send(".\r\n")
                    smtp.getreply()
                return self._refused(code, msg, stage)
        return None

    def send(self, sender: str, recipient: str, data: bytes) -> Outcome:
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        try:
            refused = self._envelope(smtp, sender, recipient)
            if refused is not None:
                return refused
            payload = data_payload(data)
            crash_point("mid-data")
            smtp.send(payload)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Nothing was accepted: the final dot never left (sendall failed or not reached).
            self._drop()
            return Outcome("retry", 0, f"connection lost before end of data: {exc}")
        crash_point("after-dot")
        try:
            code, msg = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            # Even a reset proves nothing here: a proxy or load balancer may reset our side
            # after the server queued the message. Resending could duplicate it: unknown.
            return Outcome("unknown", 0, f"connection lost after end of data, no reply: {exc}")
        if code == 250:
            return Outcome("sent", code, _reply_text(code, msg))
        if code == 421:
            self._drop()
            return Outcome("deferred", code, _reply_text(code, msg))
        return self._refused(code, msg, "DATA-END")


class MaildirTransport:
    """The embedded default: each message is a file in outbox/new, as mail clients read it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.box: mailbox.Maildir | None = None

    @property
    def description(self) -> str:
        return f"Maildir {self.path}"

    def open(self) -> None:
        # The send's threads open at once; Maildir(create=True) checks, then mkdirs: a race.
        try:
            for folder in (self.path, self.path / "tmp", self.path / "new", self.path / "cur"):
                folder.mkdir(mode=0o700, exist_ok=True)
            self.box = mailbox.Maildir(self.path, create=False)
        except OSError as exc:
            raise DeliveryError(f"cannot create the Maildir: {exc}", where=str(self.path)) from exc

    def close(self) -> None:
        self.box = None

    def send(self, sender: str, recipient: str, data: bytes) -> Outcome:
        if self.box is None:
            self.open()
        assert self.box is not None
        try:
            # A Maildir holds local line ends (LF): mutt and others show CRLF files with "^M".
            # Written to tmp/, then renamed into new/: atomic.
            key = self.box.add(data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryError(f"cannot write a message: {exc}", where=str(self.path)) from exc
        return Outcome("sent", 250, f"250 saved as {key}")
