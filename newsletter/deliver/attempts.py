"""A worker's claimed batch, message by message: build, send, classify, count (moved here from
workers.py). Over a session with PIPELINING and no rate limit, each message's data goes in one
write with the next message's envelope (RFC 2920), and the next message is built while the
relay answers: one round trip a message, and the building off the wait.

Pipelining never runs ahead of a decision: a message's envelope goes only while no stop and
no policy streak is known (Tally.may_pipeline), so a streak's fifth refusal still stops the
run before the next message's envelope; a polite stop lets the message in flight finish.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.compose.message import Personal, assemble_parts, message_id
from newsletter.compose.wire import wire
from newsletter.deliver import ledger
from newsletter.deliver.faults import crash_point
from newsletter.deliver.smtp_data import stuffed_pieces
from newsletter.deliver.smtp_pipeline import Outcome, envelope
from newsletter.errors import DeliveryError, InputError
from newsletter.i18n import edition_note
from newsletter.model import Delivery, Settle
from newsletter.store.editions import LATE_MARK

if TYPE_CHECKING:
    from newsletter.deliver.workers import Job

POLICY_STREAK = 5  # this many 5.7.x replies in a row means "we" are blocked, not the subscribers
RETRIES_PER_RUN = 3  # reconnect-and-retry for 421 or a connection lost before the final dot
_KEPT_FAILING = Outcome("retry", 0, "connection kept failing")


@dataclass(frozen=True)
class Done:
    """An attempt's outcome, waiting to be written with the worker's next claim."""

    settle: Settle
    policy: bool = False


@dataclass
class Built:
    """One claimed row's message, ready for the wire: its head and body parts as assembled
    (joined only for a transport that needs the whole, the Maildir or the one-by-one path);
    with DKIM the head starts with its DKIM-Signature field (DkimSigner.signature_field)."""

    delivery: Delivery
    sender: str  # the envelope sender (VERP: the reader's own bounce address)
    message_id: str
    commands: bytes  # its MAIL, RCPT and DATA (smtp_pipeline.envelope)
    head: bytes  # the header fields and the blank line after them
    parts: list[bytes]  # the body (compose.wire: shared parts are the edition's objects)
    tries: int = 0
    began: float = 0.0  # time.monotonic() when its envelope went (shared_rate.GateTally)

    @property
    def data(self) -> bytes:
        """The whole message (a Wire)."""
        return wire(self.head, self.parts)

    @property
    def payload(self) -> list[bytes]:
        """What goes after its 354, in pieces (smtp_data.stuffed_pieces)."""
        return stuffed_pieces(self.head, self.parts)


def build(job: Job, d: Delivery) -> Built | Done:
    """The message for one row, or its `failed` outcome when the reader's data cannot make a
    safe one (the run goes on)."""
    mid = message_id(d.issue, d.email, job.envelope.domain)
    paths = job.return_paths
    try:
        if job.links is not None:
            url, mailto = job.links(d.email)
        else:
            url, mailto = job.unsubscribe_url(d.email), paths.mailto(d.email) if paths else ""
        sender = paths.envelope_sender(d.subscriber_id) if paths else job.envelope.sender_addr
        head, parts = assemble_parts(
            job.prepared[(d.issue, d.language, d.variant)], job.envelope,
            Personal(d.email, d.name, url, mid, mailto,
                     "" if LATE_MARK in d.issue or d.reader_language in ("", d.language)
                     else edition_note(d.reader_language, d.language)),  # (late: their own)
            job.clock.now())
        if job.signer is not None:  # signed from the parts: no whole message is made
            head = job.signer.signature_field(head, parts) + head
        commands = envelope(sender, d.email)
    except InputError as exc:
        return Done(Settle(d, "failed", f"not sent: {exc}"))
    except UnicodeEncodeError:  # SMTPUTF8 (RFC 6531) is not spoken here
        return Done(Settle(d, "failed", "not sent: the address is not ASCII"))
    return Built(d, sender, mid, commands, head, parts)


def settle(job: Job, built: Built, outcome: Outcome) -> Settle:
    """Record one message's outcome in the tally (stopping the run on a policy streak) and
    return what the batch's commit writes for it."""
    d = built.delivery
    crash_point("after-reply")
    if outcome.kind == "sent":
        done = Done(Settle(d, "sent", outcome.reply, built.message_id))
    elif outcome.kind == "stop":  # the relay's limit, not the reader's (relay_stop.py)
        job.tally.stop(f"stopped: {outcome.reply}")
        return not_attempted(d, outcome.reply)
    elif outcome.kind in ("failed", "unknown"):
        done = Done(Settle(d, outcome.kind, outcome.reply))
    else:  # deferred, policy (5.7.x says nothing about this subscriber), or retries used up
        done = Done(Settle(d, "deferred", outcome.reply), policy=outcome.kind == "policy")
    return counted(job, done, built.began)


def counted(job: Job, done: Done, began: float = 0.0) -> Settle:
    """Counted in the tally (a policy streak stops the run), resolved for the ledger."""
    result = done.settle
    if result.state == "deferred":  # only a deferral needs the time (its retry_at)
        result = ledger.resolve(result, job.clock.now())
    if result.state != "pending" and job.tally.add(result.state, policy=done.policy,
                                                   began=began):
        job.tally.stop(f"stopped after {POLICY_STREAK} policy rejections in a row "
                       f"(last: {done.settle.reply}); check the relay, SPF/DKIM and the sender")
    return result


def not_attempted(d: Delivery, why: str = "the run stopped") -> Settle:
    return Settle(d, "pending", f"not attempted: {why}")


def one_by_one(job: Job, transport, deliveries: Sequence[Delivery]  # noqa: ANN001
               ) -> list[Settle]:
    """Each row sent and counted before the next (a Maildir, a relay without PIPELINING, a
    rate limit); once the run is stopping, the rest given back as pending."""
    return [_attempt(job, transport, d) if job.tally.may_send() else not_attempted(d)
            for d in deliveries]


def _attempt(job: Job, transport, d: Delivery) -> Settle:  # noqa: ANN001
    crash_point("after-claim")
    built = build(job, d)
    if isinstance(built, Done):
        return counted(job, built)
    outcome = _KEPT_FAILING
    built.began = time.monotonic()
    for _ in range(RETRIES_PER_RUN):
        job.limiter.wait()
        try:
            outcome = transport.send(built.sender, d.email, built.data)  # per message: VERP
        except DeliveryError as exc:  # says nothing about the subscriber: stop, leave pending
            job.tally.stop(str(exc))
            return not_attempted(d, str(exc))
        if outcome.kind != "retry":
            break
    return settle(job, built, outcome)


def pipelines(job: Job, transport) -> bool:  # noqa: ANN001
    """Whether this batch may go pipelined: an open SMTP session with PIPELINING, no rate."""
    return not job.limiter.interval and getattr(transport, "pipelining", False)
