"""What the commands print: result lines on stdout, warnings on stderr, the send progress.

A leaf: it imports no command module, so any command module can import it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, cast

from newsletter.deliver.workers import Tally

if TYPE_CHECKING:
    from rich.progress import Progress as RichBar
    from rich.progress import TaskID


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(f"newsletter: warning: {line}", file=sys.stderr, flush=True)


def error(line: str) -> None:
    """What failed the run (its exit code says so too): as the one-line errors read."""
    print(f"newsletter: {line}", file=sys.stderr, flush=True)


def plural(count: int, noun: str) -> str:
    """'1 item', '2 items': the count line of a summary."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


class Progress:
    """A bar on a terminal; a plain line every 10 s under cron (no terminal)."""

    def __init__(self) -> None:
        self.bar: RichBar | None = None
        self.task: TaskID | None = None
        self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, tally: Tally, total: int) -> None:
        if self.tty:
            if self.bar is None:
                # rich only for a person at a terminal: cron runs never pay its import
                from rich.progress import Progress as Bar

                self.bar = Bar(transient=True)
                self.bar.start()
                self.task = self.bar.add_task("sending", total=total)
            self.bar.update(cast("TaskID", self.task), completed=tally.done)  # set with the bar
        elif time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(f"progress: {tally.done}/{total} (sent {tally.sent}, deferred {tally.deferred}, "
                  f"failed {tally.failed}, unknown {tally.unknown})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
