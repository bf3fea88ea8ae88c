"""A scriptable SMTP server for tests, on aiosmtpd at 127.0.0.1: scripted replies per recipient,
dropped connections mid-DATA or after the final dot, session closes after K messages, and a
record of every message the server accepted (or may have accepted), to count copies per address."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HANG = "hang"  # never answer the final dot (the client times out)
DROP = "drop"  # close the connection after the final dot, without a reply
MID_DATA = "mid-data"  # close the connection half-way through DATA
BEFORE_DATA = "before-data"  # close the connection after RCPT, before DATA (as a rcpt reply)


@dataclass
class Script:
    """What the server says. Reply lists are used one per attempt; then 250."""

    rcpt: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, list[str]] = field(default_factory=dict)
    rcpt_default: str = ""  # e.g. "550 5.7.1 blocked" for every recipient
    close_after: int = 0  # 421 and close the session after this many messages
    delay: float = 0.0  # seconds to wait before answering the final dot
    pipelining: bool = True  # advertise PIPELINING (RFC 2920), as Postfix and Exim do
    password: str | None = None  # when set, AUTH must give this password
    on_message: object = None  # called with the recipient after each accepted message
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, table: dict[str, list[str]], address: str) -> str:
        with self.lock:
            replies = table.get(address.lower())
            return replies.pop(0) if replies else ""

    def copies(self) -> Counter:
        return Counter(rcpt.lower() for rcpt, _ in self.messages)

    def parsed(self, address: str):  # noqa: ANN201
        return [message_from_bytes(data, policy=policy.default)
                for rcpt, data in self.messages if rcpt.lower() == address.lower()]


class _Handler:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802
        session.host_name = hostname
        if self.script.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        reply = self.script.take(self.script.rcpt, address) or self.script.rcpt_default
        if reply == BEFORE_DATA:
            server.transport.close()
            return "250 OK"  # never reaches the client: the connection is gone
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        rcpt = envelope.rcpt_tos[0]
        action = self.script.take(self.script.data, rcpt)
        if action and action[0].isdigit():
            return action
        with self.script.lock:
            self.script.messages.append((rcpt, bytes(envelope.content)))
        server.nl_count = getattr(server, "nl_count", 0) + 1
        if callable(self.script.on_message):
            await asyncio.get_running_loop().run_in_executor(None, self.script.on_message, rcpt)
        if action == DROP:
            server.transport.close()
            return "250 OK"  # written to a closed transport: never reaches the client
        if action == HANG:
            await asyncio.sleep(30)
        if self.script.delay:
            await asyncio.sleep(self.script.delay)
        return "250 2.0.0 OK queued"


class _ScriptedSMTP(SMTP):
    script: Script

    def connection_made(self, transport) -> None:  # noqa: ANN001
        with self.script.lock:
            self.script.connections += 1
        super().connection_made(transport)

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802
        if self.script.close_after and getattr(self, "nl_count", 0) >= self.script.close_after:
            await self.push("421 4.3.2 Closing this session, come back later")
            self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        rcpt = self.envelope.rcpt_tos[0] if self.envelope and self.envelope.rcpt_tos else ""
        if self.script.take({k: v for k, v in self.script.data.items()
                             if v and v[0] == MID_DATA}, rcpt):
            self.script.take(self.script.data, rcpt)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.read(256)
            # An abortive close (RST), as a server that gives up on a transaction does.
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedServer(Controller):
    """tls_context: offer STARTTLS with it; implicit_tls: speak TLS from the start (smtps)."""

    def __init__(self, script: Script, *, tls_context=None, implicit_tls=None) -> None:  # noqa: ANN001
        self.script = script
        self.scheme = "smtps" if implicit_tls else "smtp+starttls" if tls_context else "smtp"
        kwargs: dict = {}
        if script.password is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        super().__init__(_Handler(script), hostname="127.0.0.1", port=free_port(),
                         ready_timeout=5, ssl_context=implicit_tls, **kwargs)

    def factory(self) -> SMTP:
        smtp = type("BoundSMTP", (_ScriptedSMTP,), {"script": self.script})
        return smtp(self.handler, **self.SMTP_kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        ok = isinstance(auth_data, LoginPassword) and auth_data.password.decode() == \
            self.script.password
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}?timeout=2"
