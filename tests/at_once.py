"""Run one call from several threads released together; what they raised, for the test to
assert on (an exception in a thread would otherwise only be printed)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def errors_at_once(call: Callable[[], object], threads: int) -> list[BaseException]:
    start, errors = threading.Barrier(threads), []

    def run() -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's assertion
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors
