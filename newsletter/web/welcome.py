"""The welcome mail: on confirmation, the latest issue's frozen edition in the reader's
language, personalised as a send personalises it, sent once through the web app's mail queue
(optin_service.after_confirm queues it; mailqueue.MailQueue delivers it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from newsletter.audience.return_address import ReturnPaths, bounce_address
from newsletter.compose.edition import edition_language
from newsletter.compose.message import Personal, assemble, prepare
from newsletter.config import Config
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.send import envelope_for
from newsletter.deliver.transport import Outcome
from newsletter.errors import DeliveryError
from newsletter.i18n import LANGUAGES, edition_note, gettext_for
from newsletter.store import consent as store_consent
from newsletter.store import mailqueue as store_mailqueue
from newsletter.store import segments as store_segments
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db
from newsletter.store.editions import frozen_languages, load_edition

if TYPE_CHECKING:
    from newsletter.web.mailqueue import MailQueue

log = logging.getLogger("newsletter.mailqueue")


@dataclass(frozen=True)
class Welcome:
    """The message to send, or why there is none (then `data` is empty)."""

    data: bytes = b""
    issue: str = ""
    language: str = ""
    why_not: str = ""


def build_welcome(config: Config, conn: Db, email: str, language: str,
                  now: datetime, message_id: str, secret: str,
                  unsubscribe_url: Callable[[str], str],
                  signer: DkimSigner | None = None) -> Welcome:
    """The welcome message for a confirmed reader, decided when it is sent: nothing for a
    reader who left meanwhile, before the first issue, or who is in the latest issue's
    audience already (they get or got it as everyone does); nor when that issue has
    segments, whose audience and sections were decided for the readers of its freeze."""
    sub = store_subscribers.get_subscriber(conn, email)
    if sub is None or sub.status != "active":
        return Welcome(why_not=f"not sent: the reader is {sub.status if sub else 'gone'}")
    issue = store_consent.latest_issue(conn)
    if not issue:
        return Welcome(why_not="not sent: no issue has gone out yet")
    if store_consent.in_audience(conn, issue, sub.id):
        return Welcome(why_not=f"not sent: the reader is in the audience of {issue}")
    if store_segments.frozen_counts(conn, issue):  # audience and sections per reader
        return Welcome(why_not=f"not sent: {issue} has segments (who gets which part was "
                               "decided when it was frozen)")
    languages = frozen_languages(conn, issue)
    default = config.default_language if config.default_language in languages \
        else languages[0]
    reader = sub.language or language
    chosen = edition_language(reader, set(languages), default)
    edition = load_edition(conn, issue, next(x for x in languages if x.lower() == chosen))
    _ = gettext_for(reader if reader.split("-")[0] in LANGUAGES else config.default_language)
    subject = _("Welcome to %(newsletter)s: %(subject)s") % {
        "newsletter": config.name, "subject": edition.subject}
    note = " ".join(filter(None, [_(
        "Welcome to %(newsletter)s! Here is our latest issue; the next ones will come to "
        "this address.") % {"newsletter": config.name}, edition_note(reader, edition.language)]))
    envelope = envelope_for(config)
    who = Personal(sub.email, sub.name, unsubscribe_url(sub.email), message_id,
                   ReturnPaths(config, secret).mailto(sub.email), note)
    data = assemble(prepare(edition, envelope, subject=subject), envelope, who, now)
    return Welcome(signer.sign(data) if signer is not None else data, issue, edition.language)


def send_welcome(queue: MailQueue, transport, conn: Db,  # noqa: ANN001
                 mail: store_mailqueue.QueuedMail, message_id: str) -> Outcome:
    """One queued welcome row: built now (the reader may have left), then sent."""
    try:
        welcome = build_welcome(queue.config, conn, mail.email, mail.language, queue.clock(),
                                message_id, queue.secret, queue.unsubscribe_url, queue.signer)
    except Exception as exc:  # a template or header problem: nothing was sent, no retry helps
        log.exception("welcome mail to %s cannot be built", mail.email)
        return Outcome("failed", 0, f"cannot build the message: {exc}")
    if not welcome.data:
        return Outcome("suppressed", 0, welcome.why_not)
    try:
        return transport.send(bounce_address(queue.config), mail.email, welcome.data)
    except DeliveryError as exc:  # nothing reached the relay (it went away, disk full)
        return Outcome("deferred", 0, str(exc))
