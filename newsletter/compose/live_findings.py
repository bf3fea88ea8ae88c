"""`check`'s findings for the live preview, worked out beside the page, one check at a time.

A check can cost several renderings (for an issue with segments it composes every edition of
the issue), so the page shows the edition as soon as it is rendered and the findings when they
are ready."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.compose.check import Problem

Key = tuple[str, str]  # (fingerprint of the followed files, language)


@dataclass(frozen=True)
class Findings:
    problems: tuple[Problem, ...]
    segments: tuple[str, ...] = ()  # check's lines on who would get which variant now
    seconds: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(p.severity == "error" for p in self.problems)


class Checker:
    """Runs each check once per key in one background thread; a check whose files changed
    before its turn came is skipped (the page asks again for the new fingerprint)."""

    def __init__(self, is_current: Callable[[str], bool], *,
                 on_done: Callable[[Key, Findings], None] = lambda k, f: None) -> None:
        self.is_current, self.on_done = is_current, on_done
        self._jobs: queue.SimpleQueue[tuple[Key, Callable[[], Findings]] | None] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: dict[Key, Findings] = {}
        self._queued: set[Key] = set()
        self._closed = False
        # A daemon: Ctrl-C must not wait for a check nobody will look at.
        threading.Thread(target=self._work, name="preview-check", daemon=True).start()

    def get(self, key: Key, check: Callable[[], Findings]) -> Findings | None:
        """The findings for KEY, or None while they are being worked out (started if not)."""
        with self._lock:
            if key in self._done:
                return self._done[key]
            if key not in self._queued:
                self._queued.add(key)
                self._jobs.put((key, check))
        return None

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._run(*job)

    def _run(self, key: Key, check: Callable[[], Findings]) -> None:
        if not self.is_current(key[0]):
            with self._lock:
                self._queued.discard(key)
            return
        started = time.monotonic()
        try:
            found = check()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the thread must go on
            found = Findings((Problem("error", "check", f"check failed: "
                                      f"{type(exc).__name__}: {exc}"),))
        found = Findings(found.problems, found.segments, time.monotonic() - started)
        with self._lock:
            self._queued.discard(key)
            # only the newest files' findings are worth keeping
            self._done = {k: v for k, v in self._done.items() if k[0] == key[0]}
            self._done[key] = found
            if not self._closed:  # under the lock: once close() returns, nothing more is said
                self.on_done(key, found)

    def close(self) -> None:
        """Stop after the check in hand, reporting nothing more."""
        with self._lock:
            self._closed = True
        self._jobs.put(None)
