"""Crash points for the fault tests: NEWSLETTER_CRASH_AT=name[:n] kills this process with SIGKILL
the n-th time (default first) the sender passes that point. Unset in normal use: one dict lookup."""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()
_SPEC = os.environ.get("NEWSLETTER_CRASH_AT", "")


def crash_point(name: str) -> None:
    if not _SPEC or not _SPEC.startswith(name):
        return
    target, _, nth = _SPEC.partition(":")
    if target != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
