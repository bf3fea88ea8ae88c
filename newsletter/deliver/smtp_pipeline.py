"""SMTP transactions on a session smtplib opened (EHLO, STARTTLS, AUTH): the commands written
on the socket and the replies read from smtplib's own buffer, so that with PIPELINING
(RFC 2920) one write carries the end of one message's data and the next MAIL, RCPT and DATA,
and a message costs one round trip, not two (smtplib: one command, one reply, at a time).

Every reply is classified by its code (see transport.py): 2xx sent, 4xx deferred, 5xx failed,
5.7.x of ours a policy refusal, and a connection lost after the final dot went is `unknown`.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from newsletter.audience.sender_rules import is_sender_refusal
from newsletter.errors import InputError

_MAXLINE = 8192  # smtplib's: a reply line longer than this is no SMTP server's
_MAXLINES = 100  # a reply's lines (an EHLO has ~15): more is a relay feeding us without end
ENVELOPE_OK = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA
STAGES = ("MAIL", "RCPT", "DATA")
_UNSAFE = ("\r", "\n", "\0", ">")


@dataclass(frozen=True)
class Outcome:
    """What happened to one message. kind: sent, deferred, failed, unknown, retry, policy, or
    stop (reply: the run's stop line; deliver/relay_stop.py)."""

    kind: str
    code: int
    reply: str


class Lost(Exception):  # noqa: N818 - an event the caller classifies, not an error
    """The connection failed during a write. dot_out: every byte of the data written before
    the commands (a held message's, with its final dot) had been handed to the kernel, so
    the server may have taken that message."""

    def __init__(self, dot_out: bool, cause: OSError) -> None:
        super().__init__(str(cause))
        self.dot_out = dot_out


def reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"[:400]


def is_policy(code: int, text: str) -> bool:
    """A refusal that blames us (our IP or domain blocked, SPF/DKIM/DMARC, content), by the
    same rules `bounces` uses for the class `ours`: a "5.7.1 user unknown" is the reader's,
    not a reason to stop the run (RFC 3463 5.7.x alone says too little)."""
    return is_sender_refusal(code, text)


def envelope(sender: str, recipient: str) -> bytes:
    """MAIL, RCPT and DATA as one write (RFC 2920: DATA last in its group). Written directly:
    smtplib's quoteaddr() re-parses each address with email.utils; ours are validated ASCII
    addr-specs already (a non-ASCII one raises UnicodeEncodeError here, before any write).
    An address that could end the command early (CR, LF, a NUL or ">": command injection,
    RFC 5321 4.1.2 allows none of them) is refused here too, whatever let it into the store."""
    for address in (sender, recipient):
        if any(c in address for c in _UNSAFE):
            raise InputError(f"the address {address!r} holds a line break or '>'")
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")


class Session:
    """The socket of an open smtplib.SMTP, for the transactions that follow its login."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        if smtp.sock is None:
            raise ConnectionError("the session is not open")
        self.smtp = smtp
        self.sock: socket.socket = smtp.sock
        if smtp.file is None:  # smtplib makes it at its first reply; STARTTLS drops it
            smtp.file = self.sock.makefile("rb")
        self.file = smtp.file  # smtplib's buffer: nothing it read ahead is lost
        self.pipelining = smtp.has_extn("pipelining")
        with suppress(OSError):  # whole command groups go in one write: no need for Nagle's wait
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes | Sequence[bytes], commands: bytes = b"") -> None:
        """data (a message's DATA payload, or its pieces, or b"") then commands, in one write;
        raises Lost, which says whether all of data had gone (sendall cannot say how far it
        got). Pieces go by sendmsg (gathered by the kernel), except over TLS (joined)."""
        pieces = [data] if isinstance(data, bytes) else list(data)
        size = sum(map(len, pieces))
        if commands:
            pieces.append(commands)
        sent = 0
        try:
            if len(pieces) > 1 and not isinstance(self.sock, ssl.SSLSocket):
                sent = self.sock.sendmsg(pieces)
                if sent == size + len(commands):
                    return
            rest = memoryview(b"".join(pieces) if len(pieces) > 1 else pieces[0])
            total = len(rest)
            while sent < total:
                sent += self.sock.send(rest[sent:])
        except OSError as exc:
            raise Lost(size > 0 and sent >= size, exc) from exc

    def reply(self) -> tuple[int, bytes]:
        """One whole reply (a multi-line one ends with "NNN "): its code and text; OSError
        when the connection closes or times out (code -1 for a line that is no reply)."""
        line = self._line()
        if line[3:4] == b" " and line[:3].isdigit():  # the usual reply: one line
            return int(line[:3]), line[4:].strip(b" \t\r\n")
        lines = []
        while True:
            if not line:
                raise ConnectionError("the server closed the connection")
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                break
            if len(lines) >= _MAXLINES:
                raise ConnectionError(f"a reply of more than {_MAXLINES} lines")
            line = self._line()
        try:
            code = int(line[:3])
        except ValueError:
            code = -1
        return code, b"\n".join(lines)

    def _line(self) -> bytes:
        """One reply line; a longer one than _MAXLINE is no SMTP server's (smtplib refuses it
        too): the session is dropped rather than its rest read as the next reply."""
        line = self.file.readline(_MAXLINE + 1)
        if len(line) > _MAXLINE:
            raise ConnectionError(f"a reply line longer than {_MAXLINE} bytes")
        return line

    def envelope_replies(self) -> list[tuple[int, bytes]]:
        """The replies to a pipelined MAIL, RCPT and DATA: all three come, whatever they say
        (RFC 2920 3.1)."""
        return [self.reply() for _ in STAGES]

    def envelope_one_by_one(self, sender: str, recipient: str) -> list[tuple[int, bytes]]:
        """Without PIPELINING: each command waits for the reply to the one before; the first
        refusal ends the envelope."""
        replies: list[tuple[int, bytes]] = []
        for command, ok in zip(envelope(sender, recipient).split(b"\r\n"), ENVELOPE_OK,
                               strict=False):
            self.write(command + b"\r\n")
            replies.append(self.reply())
            if replies[-1][0] not in ok:
                break
        return replies


def first_refusal(replies: list[tuple[int, bytes]]) -> tuple[int, bytes, str] | None:
    """The first reply of an envelope that is no go-ahead, with its stage; None if all are."""
    for (code, text), ok, stage in zip(replies, ENVELOPE_OK, STAGES, strict=False):
        if code not in ok:
            return code, text, stage
    return None
