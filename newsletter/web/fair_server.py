"""waitress's TCP server, fair when its connection table is full.

waitress stops accepting at connection_limit until a connection closes, and closes only
those idle for channel_timeout. A client that trickles a byte every few seconds is never
idle, so 200 such sockets from one host (slowloris) shut every reader out for as long as
they last. Here the server keeps accepting, and at the limit each new connection closes one
that holds a slot without a request being answered (still sending one, or idle between
requests): of the peer that holds the most, the oldest. A reader's request arrives in one
packet and is then in service, so it is not the one closed; a browser reopens an idle
keep-alive connection. Many hosts at once are the buffering proxy's job (README: web app).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from newsletter.web.optin import client_key

log = logging.getLogger("newsletter.web")
LOG_EVERY = 60.0  # seconds between two "table full" lines: an attack is not a log flood


def fair_server(app: Callable, **settings: object):  # noqa: ANN201
    """create_server(app, **settings), with FairServer for each listening socket."""
    adj = Adjustments(**settings)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    shared: dict = {}  # one socket map for every listener, as create_server makes it
    servers = [FairServer(app, shared, dispatcher=dispatcher, adj=adj, sockinfo=info)
               for info in adj.listen]
    if len(servers) == 1:
        return servers[0]
    return MultiSocketServer(shared, adj, [(s.effective_host, s.effective_port)
                                           for s in servers], dispatcher, servers[0].log_info)


def peer_of(channel: HTTPChannel) -> str:
    """The peer a connection counts against: its address, an IPv6 client by its /64."""
    addr = channel.addr
    return client_key(addr[0] if isinstance(addr, tuple) else str(addr), "", ())


class FairServer(TcpWSGIServer):
    """At connection_limit, makes room (see the module's docstring) instead of waiting."""

    next_channel_cleanup: float = 0.0  # waitress's, typed here for mypy
    logged_at = 0.0

    def readable(self) -> bool:
        # waitress's own readable() without its stop at connection_limit: the backlog is
        # drained at once, so a reader's connection never waits behind a flood of others.
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return bool(self.accepting)

    def handle_accept(self) -> None:
        # waitress's handle_accept(), keeping the new channel for make_room()
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)
        except OSError:  # a bogus socket from accept(), or the client already gone
            return
        full = len(self._map) >= self.adj.connection_limit
        channel = self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)
        if full:
            self.make_room(channel)

    def make_room(self, new: HTTPChannel) -> None:
        """One connection closes for the new one: the oldest without a request in service of
        the peer holding the most (the new one's own peer included); with none such, the
        new one (every slot is answering someone)."""
        channels = [c for c in self._map.values() if isinstance(c, HTTPChannel)]
        if len(self._map) - sum(c.will_close for c in channels) <= self.adj.connection_limit:
            return  # the connections marked before are enough (they close in this loop)
        held = Counter(peer_of(c) for c in channels)
        # Without a request in service and nothing left to send: nobody is waiting on it.
        free = [c for c in channels if c is not new and not (
            c.requests or c.total_outbufs_len or c.will_close or c.close_when_flushed)]
        victim = min(free, key=lambda c: (-held[peer_of(c)], c.creation_time), default=new)
        victim.will_close = True  # the loop closes it (writable(), handle_write())
        now = time.time()
        if now - self.logged_at >= LOG_EVERY:
            self.logged_at = now
            top, count = held.most_common(1)[0]
            log.warning("all %d connections in use: closing those that hold one without a "
                        "request, of the address holding the most first (%s holds %d)",
                        self.adj.connection_limit, top, count)
