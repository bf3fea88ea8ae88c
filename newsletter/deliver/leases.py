"""Keeping this sender's claims alive: while a run's workers hold rows `sending`, their
leases are renewed every third of the lease, so a message held longer than that (a slow
relay, retries) is not taken for a dead sender's by another host (ledger.recover_interrupted).
A sender killed outright stops renewing, and its rows become `unknown` once the lease is out.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from newsletter.deliver import ledger
from newsletter.store import claims as store_claims
from newsletter.store.connect import open_store
from newsletter.store.db import StoreError


@contextlib.contextmanager
def renewing(db_path: Path | str, now: Callable[[], datetime],
             lease: timedelta | None) -> Iterator[None]:
    """Renew ledger.OWNER's leases on their own connection until the block ends (no lease:
    nothing). A renewal that cannot be written is left to the lease running out: the
    workers' own commits fail and stop the run."""
    if lease is None:
        yield
        return
    stopped = threading.Event()

    def renew() -> None:
        with contextlib.suppress(StoreError), contextlib.closing(open_store(db_path)) as db:
            while not stopped.wait(lease.total_seconds() / 3):
                store_claims.renew_leases(db, ledger.OWNER, now() + lease)

    renewer = threading.Thread(target=renew, daemon=True, name="lease-renewer")
    renewer.start()
    try:
        yield
    finally:
        stopped.set()
        renewer.join()
