"""The bench's ceilings: what the wire carries, and what smtplib carries.

`wire` is a pipelined raw-socket SMTP client (RFC 2920) sending one pre-built, pre-stuffed
message over each connection: the end of one message's data and the next MAIL/RCPT/DATA go in
one write, so each message costs one round trip and no Python per byte. Nothing a real sender
does (ledger, personalisation, headers, signatures) is in it: it is the upper bound the
project's send is measured against. `smtplib_ceiling` is the older reference row: the standard
library, one command at a time.
"""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Callable

SENDER = b"news@ipbusiness.example.org"


def stuffed(message: bytes) -> bytes:
    """The message as it goes after DATA: CRLF line ends, leading dots doubled (RFC 5321
    4.5.2), and the end-of-data line."""
    body = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    body = body.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


class _Replies:
    """Reads whole SMTP replies (multi-line ones end with a line "NNN ") from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb", buffering=1 << 16)

    def expect(self, count: int, first: bytes = b"2") -> None:
        for _ in range(count):
            while True:
                line = self.file.readline()
                if not line:
                    raise ConnectionError("the sink closed the connection")
                if line[3:4] != b"-":
                    break
            if line[:1] not in (first, b"3"):
                raise ConnectionError(f"unexpected reply: {line!r}")


def _wire_connection(port: int, data: bytes, count: int, ready: threading.Barrier) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        replies = _Replies(sock)
        replies.expect(1)
        sock.sendall(b"EHLO wire.bench\r\n")
        replies.expect(1)
        ready.wait()
        envelope = [b"MAIL FROM:<" + SENDER + b">\r\nRCPT TO:<r%d@example.com>\r\nDATA\r\n" % i
                    for i in range(count)]
        sock.sendall(envelope[0])
        replies.expect(3)  # 250 MAIL, 250 RCPT, 354 DATA
        for i in range(1, count):
            sock.sendall(data + envelope[i])
            replies.expect(4)  # 250 for the data, then the next group's three
        sock.sendall(data + b"QUIT\r\n")
        replies.expect(2)


def _smtplib_connection(port: int, message: bytes, count: int,
                        ready: threading.Barrier) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    ready.wait()
    for i in range(count):
        smtp.sendmail(SENDER.decode(), [f"r{i}@example.com"], message)
    smtp.quit()


def _timed(worker: Callable[[int, bytes, int, threading.Barrier], None], port: int,
           payload: bytes, count: int, connections: int) -> float:
    per = [count // connections + (1 if i < count % connections else 0)
           for i in range(connections)]
    ready = threading.Barrier(connections + 1)
    threads = [threading.Thread(target=worker, args=(port, payload, n, ready)) for n in per]
    for t in threads:
        t.start()
    ready.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    return count / (time.monotonic() - started)


def wire(port: int, message: bytes, count: int, connections: int) -> float:
    """Messages per second a pipelined sender of pre-built messages reaches."""
    return _timed(_wire_connection, port, stuffed(message), count, connections)


def smtplib_ceiling(port: int, message: bytes, count: int, connections: int) -> float:
    """Messages per second smtplib reaches with pre-built messages over reused connections."""
    return _timed(_smtplib_connection, port, message, count, connections)
