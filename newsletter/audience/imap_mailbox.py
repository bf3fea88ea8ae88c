"""An IMAP mailbox as a source of reports: unflagged messages in, a keyword (or a move) out."""

from __future__ import annotations

import base64
import imaplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.errors import InputError, NewsletterError

KEYWORD = "$NewsletterProcessed"
PORTS = {"imaps": 993, "imap": 143}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MAX_FETCH = 10 * 1024 * 1024  # as mailboxes.MAX_MESSAGE_BYTES: only the beginning is needed


class MailboxError(NewsletterError):
    """The IMAP server cannot be reached, refuses the login or lacks the mailbox (exit 1)."""


@dataclass(frozen=True)
class ImapSettings:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    mailbox: str
    timeout: float = 30.0

    @property
    def display(self) -> str:
        """For messages and logs: never the password."""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.mailbox}"


def parse_imap_url(url: str, password: str) -> ImapSettings:
    """imaps://user@host[:port]/MAILBOX[?timeout=S] (RFC 5092 shape); INBOX when no mailbox."""
    parts = urlsplit(url)
    scheme, shown = parts.scheme.lower(), f"{parts.scheme}://{parts.hostname or ''}"
    if not parts.hostname:
        raise InputError("an IMAP URL needs a host, e.g. imaps://bounces@mail.example.org/INBOX")
    if parts.password is not None:
        raise InputError(f"{shown}: the URL must not carry the password; put it in "
                         "NEWSLETTER_IMAP_PASSWORD")
    if not parts.username:
        raise InputError(f"{shown}: the URL needs a user, e.g. imaps://bounces@{parts.hostname}/")
    if scheme == "imap" and parts.hostname not in _LOOPBACK:
        raise InputError(f"{shown}: plain imap:// would send the password in clear; use "
                         "imaps:// (plain imap:// is allowed to localhost only)")
    if not password:
        raise InputError("NEWSLETTER_IMAP_PASSWORD is not set: it is the password of "
                         f"{unquote(parts.username)} at {parts.hostname}")
    try:
        port = parts.port or PORTS[scheme]
        timeout = float(parse_qs(parts.query).get("timeout", ["30"])[0])
    except ValueError as exc:
        raise InputError(f"{shown}: bad port or timeout ({exc})") from exc
    mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapSettings(scheme, parts.hostname, port, unquote(parts.username), password,
                        mailbox, timeout)


def mailbox_name(name: str) -> str:
    """A mailbox name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    if any(c < " " or c == "\x7f" for c in name):
        raise InputError(f"IMAP mailbox name {name!r} contains a control character")
    text = "".join(out)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSource:
    """One IMAP session: the messages without our keyword, each flagged (or moved) when done.

    Nothing is ever deleted or expunged: a processed message keeps its place (or moves to
    [bounces] imap_move_to) and carries $NewsletterProcessed, so a rerun skips it.
    """

    def __init__(self, settings: ImapSettings, *, move_to: str = "",
                 read_only: bool = False) -> None:
        self.settings, self.move_to, self.read_only = settings, move_to, read_only
        self.imap: imaplib.IMAP4 | None = None
        self.flag = KEYWORD
        self.can_move = False
        self.uids: set[str] = set()

    @classmethod
    def from_url(cls, url: str, password: str, **options: object) -> ImapSource:
        return cls(parse_imap_url(url, password), **options)  # type: ignore[arg-type]

    def __enter__(self) -> ImapSource:
        self.imap = self._login()
        try:
            self._select()
        except BaseException:
            self._logout()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._logout()

    def _fail(self, what: str) -> MailboxError:
        return MailboxError(what, where=self.settings.display)

    def _login(self) -> imaplib.IMAP4:
        s = self.settings
        try:
            if s.scheme == "imaps":
                # Certificate and host name verified (ssl.create_default_context's defaults).
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=ssl.create_default_context(), timeout=s.timeout)
            else:
                imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise self._fail(f"certificate not trusted: {exc.verify_message}") from exc
        except ssl.SSLError as exc:
            raise self._fail(f"TLS failed: {exc.reason or exc}") from exc
        except socket.gaierror as exc:
            raise self._fail(f"unknown host {s.host}: {exc.strerror}") from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail(f"cannot connect: {_text(exc)}") from exc
        try:
            imap.login(s.user, s.password)
        except (OSError, imaplib.IMAP4.error) as exc:
            imap.shutdown()
            raise self._fail(f"login refused for {s.user}: {_text(exc)}") from exc
        return imap

    def _select(self) -> None:
        imap = self._session()
        typ, data = imap.select(mailbox_name(self.settings.mailbox), readonly=self.read_only)
        if typ != "OK":
            raise self._fail(f"no mailbox {self.settings.mailbox!r}: {_text(data)}")
        # RFC 3501 7.1: "\*" in PERMANENTFLAGS means new keywords may be stored; without it
        # (some servers, read-only folders) \Seen is the only flag we can leave.
        permanent = " ".join(_text(d) for d in (imap.response("PERMANENTFLAGS")[1] or [])
                             if d)
        if "\\*" not in permanent and KEYWORD not in permanent:
            self.flag = "\\Seen"
        # After the login: servers announce more (MOVE among them) to a logged-in client.
        typ, data = imap.capability()
        self.can_move = typ == "OK" and b"MOVE" in (data[0] or b"").upper().split()  # RFC 6851
        if self.move_to and not self.read_only:
            typ, data = imap.status(mailbox_name(self.move_to), "(MESSAGES)")
            if typ != "OK":
                raise self._fail(f"no mailbox {self.move_to!r} to move processed messages "
                                 "to: create it, or unset [bounces] imap_move_to")

    def _session(self) -> imaplib.IMAP4:
        if self.imap is None:
            raise self._fail("not connected")
        return self.imap

    def messages(self) -> Iterator[tuple[str, bytes]]:
        imap = self._session()
        unflagged = f"UNKEYWORD {self.flag}" if self.flag == KEYWORD else "UNSEEN"
        typ, data = self._uid("SEARCH", unflagged)
        for uid in (data[0] or b"").split():
            raw = self._fetch(imap, uid.decode("ascii"))
            if raw is not None:
                self.uids.add(uid.decode("ascii"))
                yield f"uid {uid.decode('ascii')}", raw

    def _fetch(self, imap: imaplib.IMAP4, uid: str) -> bytes | None:
        # BODY.PEEK: reading leaves \Seen alone (RFC 3501 6.4.5); <0.N> caps what is read.
        typ, data = self._uid("FETCH", uid, f"(BODY.PEEK[]<0.{_MAX_FETCH}>)")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None  # expunged by someone else since the search

    def mark_done(self, label: str) -> None:
        uid = label.removeprefix("uid ")
        if self.read_only or uid not in self.uids:
            return
        # Flag first: if the move fails, the keyword alone keeps a rerun from redoing it.
        typ, data = self._uid("STORE", uid, "+FLAGS.SILENT", f"({self.flag})", check=False)
        if typ != "OK" and self.flag == KEYWORD:
            # "\*" in PERMANENTFLAGS is a promise some servers break (Dovecot with
            # mail_max_keyword_length too short says NO [CANNOT]): \Seen from here on.
            self.flag = "\\Seen"
            typ, data = self._uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)", check=False)
        if typ != "OK":
            raise self._fail(f"UID STORE refused: {_text(data)}")
        if self.move_to:
            verb = "MOVE" if self.can_move else "COPY"  # COPY keeps the flagged original
            self._uid(verb, uid, mailbox_name(self.move_to))

    def _uid(self, command: str, *args: str, check: bool = True) -> tuple[str, list]:
        try:
            typ, data = self._session().uid(command, *args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail(f"UID {command} failed: {_text(exc)}") from exc
        if check and typ != "OK":
            raise self._fail(f"UID {command} refused: {_text(data)}")
        return typ, data

    def _logout(self) -> None:
        if self.imap is None:
            return
        try:
            self.imap.logout()  # never CLOSE: it would expunge others' \Deleted messages
        except (OSError, imaplib.IMAP4.error):
            self.imap.shutdown()
        self.imap = None


def _text(value: object) -> str:
    """A server's words or an exception as one short line (imaplib hands over bytes)."""
    if isinstance(value, BaseException):  # imaplib's errors carry the server's bytes
        one = value.args[0] if len(value.args) == 1 else None
        value = one if isinstance(one, bytes | str) else (str(value) or type(value).__name__)
    if isinstance(value, list | tuple):
        value = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in value if v)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:300]
