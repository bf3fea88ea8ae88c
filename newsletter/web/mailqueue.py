"""The outgoing-mail queue's worker: claim due rows, send each, settle it after the reply.

The same discipline as the send ledger: a row is committed `sending` before its SMTP
transaction; a claim whose lease ran out (a crash, a kill) becomes `unknown` and is never
resent automatically; 4xx retries with backoff for a bounded period; 5xx is `failed`.
`newsletter serve` runs it in a background thread; tests call run_once().
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid

from newsletter.audience.return_address import bounce_address
from newsletter.audience.tokens import secret_from_env
from newsletter.config import Config
from newsletter.deliver.dkim import signer_from_config
from newsletter.deliver.ledger import HOST
from newsletter.deliver.send import Transports, unsubscribe_url_maker
from newsletter.deliver.transport import Outcome
from newsletter.errors import DeliveryError, InputError, NewsletterError
from newsletter.store import mailqueue as store_mailqueue
from newsletter.store import optin as store_optin
from newsletter.store.connect import database_url
from newsletter.store.db import Db
from newsletter.store.handles import StoreHandles
from newsletter.web.mail import build_confirmation
from newsletter.web.optin import CONFIRM_DAYS, confirm_token

log = logging.getLogger("newsletter.mailqueue")
BATCH = 5  # rows claimed at once: with a 30 s relay timeout, well inside the lease
LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY_GAP = timedelta(hours=1)
RETRY_PERIOD = timedelta(hours=24)  # a confirm link a day late is still worth sending
KEEP_SETTLED = timedelta(days=30)  # then a settled row (and the address in it) is deleted
_STATE_OF = {"sent": "sent", "failed": "failed", "unknown": "unknown", "deferred": "deferred",
             "retry": "deferred", "policy": "deferred", "suppressed": "suppressed"}


@dataclass(frozen=True)
class QueueRun:
    """What one run_once did, by the state each claimed row was settled in."""

    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0


class MailQueue:
    """Delivers queued mail through the configured transport (SMTP, else the Maildir)."""

    def __init__(self, config: Config, *, transports: Transports | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 handles: StoreHandles | None = None) -> None:
        """handles: serve's, shared with its web app; else the queue's own (closed with it)."""
        self.config, self.clock = config, clock
        if handles is None:
            handles = StoreHandles(database_url(config))
            weakref.finalize(self, handles.close)
        self.handles = handles
        self.transports = transports or Transports(config)
        self.secret, real = secret_from_env()
        if self.transports.is_smtp and not real:
            raise InputError("NEWSLETTER_SECRET is not set: confirmation mail sent over SMTP "
                             "must not carry forgeable links")
        self.signer = signer_from_config(self.config)  # a bad key stops serve at start
        # The host as the ledger names it (NEWSLETTER_HOST where host names repeat): a row
        # left `sending` says which serve host held it.
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.unsubscribe_url = unsubscribe_url_maker(config, self.secret)
        self._pruned_at: datetime | None = None

    def run_once(self, now: datetime | None = None) -> QueueRun:
        """Claim up to BATCH due rows and deliver them; returns the tally."""
        now = now or self.clock()
        with self.handles.db() as conn:
            self._prune(conn, now)
            claimed = store_mailqueue.claim_due_mail(conn, self.owner, now, BATCH, LEASE)
            tally = self._deliver(conn, claimed) if claimed else Counter()
        return QueueRun(len(claimed), tally["sent"], tally["deferred"], tally["failed"],
                        tally["unknown"])

    def _prune(self, conn: Db, now: datetime) -> None:
        if self._pruned_at is None or now - self._pruned_at > timedelta(hours=1):
            store_optin.prune_web_records(conn, now - timedelta(days=CONFIRM_DAYS + 1),
                                    now - KEEP_SETTLED)
            self._pruned_at = now

    def _deliver(self, conn: Db, claimed: list[store_mailqueue.QueuedMail]) -> Counter:
        tally: Counter = Counter()
        transport = self.transports.make()
        try:
            try:
                transport.open()
            except DeliveryError as exc:
                log.error("confirmation mail: the relay is unavailable, retrying later: %s", exc)
                for mail in claimed:
                    tally[self._settle(conn, mail, Outcome("deferred", 0, str(exc)))] += 1
                return tally
            for mail in claimed:
                tally[self._settle(conn, mail, *self._send(transport, mail, conn))] += 1
        finally:
            transport.close()
        return tally

    def _send(self, transport, mail: store_mailqueue.QueuedMail,  # noqa: ANN001
              conn: Db) -> tuple[Outcome, str]:
        """(the outcome, the message's Message-ID)."""
        base, mid = self.config.base_url, make_msgid(domain=self.config.sender_domain)
        if mail.kind == "welcome":  # newsletter.welcome: the latest issue, once per reader
            from newsletter.web.welcome import send_welcome

            return send_welcome(self, transport, conn, mail, mid), mid
        try:
            if mail.kind == "manage":  # newsletter.manage_mail: the reader's own data link
                from newsletter.web.manage_mail import build_manage_mail, manage_link

                data = build_manage_mail(
                    self.config, mail.email, mail.language,
                    manage_link(self.config, self.secret, mail.email, self.clock()),
                    self.unsubscribe_url(mail.email), self.clock(), mid, self.signer)
            else:
                token = confirm_token(self.secret, self.config.list_id, mail.ref)
                data = build_confirmation(self.config, mail.email, mail.language,
                                          f"{base}/confirm/{token}",
                                          self.unsubscribe_url(mail.email), self.clock(), mid,
                                          self.signer)
        except Exception as exc:  # a template or header problem: nothing was sent, no retry helps
            log.exception("confirmation mail to %s cannot be built", mail.email)
            return Outcome("failed", 0, f"cannot build the message: {exc}"), mid
        try:
            return transport.send(bounce_address(self.config), mail.email, data), mid
        except DeliveryError as exc:  # nothing reached the relay (it went away, disk full)
            return Outcome("deferred", 0, str(exc)), mid

    def _settle(self, conn: Db, mail: store_mailqueue.QueuedMail, outcome: Outcome,
                message_id: str = "") -> str:
        now = self.clock()
        state, reply, retry_at = _STATE_OF.get(outcome.kind, "deferred"), outcome.reply, None
        if state == "deferred":
            first = mail.first_deferred_at or now
            if now - first >= RETRY_PERIOD:
                state, reply = "failed", f"gave up after {RETRY_PERIOD / timedelta(hours=1):.0f}"\
                                         f" h: {reply}"
            else:
                retry_at = now + min(FIRST_RETRY * 3 ** max(mail.attempts - 1, 0), MAX_RETRY_GAP)
        if not store_mailqueue.settle_mail(conn, mail.id, self.owner, state, reply, now,
                                           retry_at=retry_at,
                                           message_id=message_id if state == "sent" else ""):
            log.error("confirmation mail to %s: the claim expired before the reply (%s)",
                      mail.email, reply)
            return "unknown"
        _log_outcome(mail, state, outcome)
        return state


def _log_outcome(mail: store_mailqueue.QueuedMail, state: str, outcome: Outcome) -> None:
    """Failures go where the operator of `serve` sees them: its log on stderr."""
    what = {"welcome": "welcome mail", "manage": "data-link mail"}.get(mail.kind,
                                                                       "confirmation mail")
    if state in ("failed", "unknown"):
        log.error("%s to %s %s: %s", what, mail.email, state, outcome.reply)
    elif outcome.kind == "policy":
        log.error("%s to %s: the relay refuses our mail (%s); retrying later", what,
                  mail.email, outcome.reply)
    elif state == "deferred":
        log.warning("%s to %s deferred: %s", what, mail.email, outcome.reply)
    elif state == "suppressed":
        log.info("%s to %s %s", what, mail.email, outcome.reply)
    else:
        log.info("%s to %s sent", what, mail.email)


class QueueWorker:
    """Runs a MailQueue in a background thread: at once when notified, else every interval."""

    def __init__(self, queue: MailQueue, interval: float = 5.0) -> None:
        self.queue, self.interval = queue, interval
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mail-queue", daemon=True)

    def start(self) -> QueueWorker:
        self._thread.start()
        return self

    def notify(self) -> None:
        """A row may be due: look now rather than at the next interval (no I/O here)."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the message in hand, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.queue.run_once().claimed == BATCH
            except NewsletterError as exc:
                log.error("mail queue: %s", exc)
            except Exception:  # the worker must outlive one bad row or a database hiccup
                log.exception("mail queue: unexpected error")
            if not busy:
                self._wake.wait(self.interval)
                self._wake.clear()
