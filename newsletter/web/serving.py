"""Run the web app under waitress with limits for a public host, and the mail worker beside it."""

from __future__ import annotations

import signal
from collections.abc import Callable

from flask import Flask

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.store.connect import database_url
from newsletter.store.handles import StoreHandles
from newsletter.web.app import MAX_BODY_BYTES, create_app
from newsletter.web.mailqueue import MailQueue, QueueWorker

# waitress on its own cannot outlast many slow clients (a trickling one is never idle for
# channel_timeout); the README's recipe puts a buffering proxy in front. These limits keep
# one host's share bounded all the same, and fair_server makes room at connection_limit.
WAITRESS_LIMITS = {
    "max_request_body_size": MAX_BODY_BYTES,  # larger: 413 before the body is read
    "max_request_header_size": 16 * 1024,
    "inbuf_overflow": 64 * 1024,  # bodies beyond this wait in a temporary file, not in memory
    "channel_timeout": 20,  # seconds a connection may sit idle (a trickling client is idle)
    "connection_limit": 200,  # then waitress stops accepting until some close
    "cleanup_interval": 5,  # how often idle connections are looked for
    "recv_bytes": 8192,
    "backlog": 256,
    "asyncore_use_poll": True,  # select() fails beyond 1024 file descriptors
    "ident": "newsletter",
    "expose_tracebacks": False,
    # X-Forwarded-For reaches the app, which believes it only from [web] trusted_proxies
    # (web_optin.client_key); waitress's own trusted_proxy takes a single address.
    "trusted_proxy": None,
    "clear_untrusted_proxy_headers": False,
}


def make_server(app: Flask, host: str, port: int, *, threads: int = 4):  # noqa: ANN201
    """The waitress server (not yet running); port 0 picks a free one."""
    from newsletter.web.fair_server import fair_server  # waitress only when serving

    return fair_server(app, host=host, port=port, threads=threads, **WAITRESS_LIMITS)


def listen(app: Flask, host: str, port: int, *, threads: int = 4):  # noqa: ANN201
    """make_server, with a port that cannot be bound (busy, not ours) as one line, exit 1."""
    try:
        return make_server(app, host, port, threads=threads)
    except OSError as exc:
        raise NewsletterError(f"cannot listen: {exc.strerror or exc}",
                              where=f"{host}:{port}") from exc


def serve(config: Config, host: str, port: int, *, threads: int = 4,
          on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); the mail worker finishes the message in
    hand, then stops, so a stop never leaves a row `sending`. The port is bound before
    on_ready is called (the CLI's "serving ..." line), so a busy port says so first."""
    # One set of database handles for the process: on PostgreSQL one pool, a connection
    # for each request thread and each worker (mail queue, click totals).
    handles = StoreHandles(database_url(config), size=threads + 2)
    try:
        worker = QueueWorker(MailQueue(config, handles=handles))
        app = create_app(config, on_queued=worker.notify, handles=handles)
        server = listen(app, host, port, threads=threads)
    except BaseException:
        handles.close()
        raise
    worker.start()
    signal.signal(signal.SIGTERM, _interrupt)  # waitress stops cleanly on KeyboardInterrupt
    on_ready()
    try:
        server.run()
    finally:
        worker.stop()
        app.extensions["newsletter.reach"].flush(everything=True)  # clicks still waiting
        handles.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
