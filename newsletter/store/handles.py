"""Database handles for a long-running process: `newsletter serve`'s request threads and its
background workers (mail queue, click totals, webhooks) take them from one StoreHandles.

On PostgreSQL the process keeps one connection pool (store.postgres_db.PostgresPool), opened
on first use: a new connection costs a TCP handshake, TLS and SCRAM authentication, far more
than the query a page needs. On SQLite each handle is a new connection to the local file (no
handshake; sqlite3 connections belong to one thread, and WAL lets readers and the writer
work side by side), so nothing is kept between uses.
"""

from __future__ import annotations

import threading

from newsletter.store.connect import is_server_url, open_store
from newsletter.store.db import Db, StoreError


class StoreHandles:
    """`with handles.db() as db:` borrows a handle; closing it gives it back to the pool.

    size: the most connections the pool opens at once (serve: its request threads and its
    workers), so a host never takes more of the server's max_connections than that.
    timeout: seconds a borrower waits for a connection (all lent out, or the server down)
    before a StoreError, well inside waitress's channel_timeout."""

    def __init__(self, url: str, *, size: int = 8, timeout: float = 10) -> None:
        self.url, self.size, self.timeout = url, size, timeout
        self._pool = None
        self._lock = threading.Lock()
        self._closed = False

    def db(self) -> Db:
        if not is_server_url(self.url):
            return open_store(self.url)
        return self._shared_pool().db()

    def _shared_pool(self):  # noqa: ANN202 - PostgresPool, imported only when used
        with self._lock:
            if self._pool is None:
                if self._closed:  # a worker still running after serve's shutdown
                    raise StoreError("the connection pool is closed (shutting down)")
                from newsletter.store.postgres_db import PostgresPool  # psycopg only when used

                self._pool = PostgresPool(self.url, size=self.size, timeout=self.timeout)
            return self._pool

    def close(self) -> None:
        """Close the pool's connections (serve's shutdown); handles still out are closed as
        they come back. Idempotent."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.close()
