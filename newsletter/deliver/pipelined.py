"""A claimed batch over one SMTP session with PIPELINING (RFC 2920): each message's data and
the next message's MAIL, RCPT and DATA go in one write, as a sender of pre-built messages
does, and the message after that is built while the relay reads and answers. One round trip
a message instead of two, and the building overlaps the wait.

What it keeps (attempts.py says the rest): a message's data goes only after its own 354; its
envelope goes only while no stop and no policy streak is known (Tally.may_pipeline), else the
message before is finished and counted first, so a streak's last refusal stops the run before
another envelope; a polite stop lets the message whose 354 is in hand finish. A connection
lost during a write makes the held message `unknown` only if its final dot had been handed
over whole (else it is retried, as the next one is); lost after, while its reply is awaited,
`unknown`. Crash points sit where the one-by-one path has them: `after-claim` once a row's
envelope has gone with the data before it, `mid-data` after its 354, `after-dot` once its
data has gone, `after-reply` when its outcome is counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from newsletter.deliver.attempts import (
    RETRIES_PER_RUN,
    Built,
    Done,
    build,
    counted,
    not_attempted,
    settle,
)
from newsletter.deliver.faults import crash_point
from newsletter.deliver.smtp_pipeline import Outcome
from newsletter.errors import DeliveryError
from newsletter.model import Delivery, Settle

if TYPE_CHECKING:
    from newsletter.deliver.transport import SmtpTransport
    from newsletter.deliver.workers import Job

_NO_SESSION = Outcome("retry", 0, "connection lost before end of data")


class Pipeline:
    """One batch's messages over one session; run() returns what its commit records."""

    def __init__(self, job: Job, transport: SmtpTransport, deliveries: Sequence[Delivery]):
        self.job, self.transport = job, transport
        self.rows: Iterator[Delivery] = iter(deliveries)
        self.ready: deque[Built] = deque()  # built, not yet on the wire (or to be retried)
        self.held: Built | None = None  # its 354 is in: its data goes with the next write
        self.out: list[Settle] = []

    def run(self) -> list[Settle]:
        tally = self.job.tally
        self._build_next()
        while self.ready or self.held:
            if self.held is not None and not (self.ready and tally.may_pipeline()):
                self._finish_held()  # its outcome first: it may stop the run
            elif not tally.may_send() or not self._step(self.ready.popleft()):
                break
        if self.held is not None:  # a stop came between two checks: it is in flight
            self._finish_held()
        self.out += [not_attempted(b.delivery) for b in self.ready]
        self.out += [not_attempted(d) for d in self.rows]
        return self.out

    def _step(self, built: Built) -> bool:
        """The held message's data and this one's envelope in one write; then, while the relay
        answers, the next message built; then the replies. False: the session cannot reopen."""
        held, self.held = self.held, None
        built.began = time.monotonic()
        try:
            lost = self.transport.push(held.payload if held else b"", built.commands)
        except DeliveryError as exc:  # reopening failed: the relay is gone; stop, leave pending
            self.job.tally.stop(str(exc))
            self.out.append(not_attempted(built.delivery, str(exc)))
            return False
        if held is not None and lost is None:
            crash_point("after-dot")
        crash_point("after-claim")
        self._build_next()
        if held is not None:
            self._outcome(held, lost or self.transport.end())
        refused = _NO_SESSION if held is None and lost else self.transport.accepted()
        if refused is None:
            crash_point("mid-data")
            self.held = built
        else:
            self._outcome(built, refused)
        return True

    def _finish_held(self) -> None:
        """The held message's data alone, then its reply."""
        held, self.held = self.held, None
        assert held is not None
        lost = self.transport.push(held.payload, b"")  # the session is open: no reopen
        if lost is None:
            crash_point("after-dot")
        self._outcome(held, lost or self.transport.end())

    def _outcome(self, built: Built, outcome: Outcome) -> None:
        """Counted and kept for the commit, or, for a retry (nothing accepted), back in line
        first, on the next session, until RETRIES_PER_RUN tries."""
        built.tries += 1
        if outcome.kind == "retry" and built.tries < RETRIES_PER_RUN:
            self.ready.appendleft(built)
        else:
            self.out.append(settle(self.job, built, outcome))

    def _build_next(self) -> None:
        """One message ready ahead, unless the run is stopping; a row whose data cannot make
        a message is failed here and the next one built."""
        while not self.ready and not self.job.tally.stop_reason:
            d = next(self.rows, None)
            if d is None:
                return
            made = build(self.job, d)
            if isinstance(made, Done):
                self.out.append(counted(self.job, made))
            else:
                self.ready.append(made)
