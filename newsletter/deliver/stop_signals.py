"""The polite stop: SIGTERM or a first Ctrl-C ends a send's claiming, not its messages in
flight (moved here from workers.py as it was; workers re-exports it)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.deliver.workers import Tally


@contextlib.contextmanager
def stop_on_signals(tally: Tally) -> Iterator[None]:
    """SIGTERM (a service manager, `kill`) or a first Ctrl-C stops claiming; messages in flight
    finish and are recorded, so a polite stop leaves no `unknown` rows. A second Ctrl-C
    interrupts at once; SIGKILL too. What is left then is for recovery (see the README)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        tally.stop(f"stopped by {signal.Signals(signum).name}")
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C is final

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
