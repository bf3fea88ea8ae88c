"""`send --dry-run`: every message that would go out now, rendered and measured; nothing is
sent and nothing written (no snapshot, no import, no recovery)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from newsletter.audience.return_address import ReturnPaths
from newsletter.audience.subscribers import read_csv
from newsletter.compose.check import check_issue
from newsletter.compose.edition import compose
from newsletter.compose.message import Envelope, Personal, build_message, message_id
from newsletter.compose.signoff import missing_signoff, signed_only
from newsletter.config import Config
from newsletter.deliver.plan import Plan, translations_of
from newsletter.deliver.schedule_rule import held_line
from newsletter.deliver.segmenting import Segmenter
from newsletter.deliver.workers import Clock
from newsletter.errors import NewsletterError
from newsletter.model import Subscriber
from newsletter.store import claims as store_claims
from newsletter.store import subscribers as store_subscribers
from newsletter.store.db import Db


@dataclass(frozen=True)
class DryRunMail:
    """What the messages are built with, as the real run builds them."""

    envelope: Envelope
    unsubscribe_url: Callable[[str], str]
    return_paths: ReturnPaths
    transport: str  # the transport's description, for the note


def dry_run(config: Config, conn: Db, plan: Plan, clock: Clock,
            mail: DryRunMail) -> tuple[str, tuple[str, ...]]:
    """Render every message that would go out now; send nothing and write nothing (no
    snapshot, no import, no recovery). Issues the real run would refuse are named."""
    envelope, url_of, paths = mail.envelope, mail.unsubscribe_url, mail.return_paths
    count, size, refused = 0, 0, []
    today = clock.now().astimezone(config.timezone).date()
    for draft in plan.to_freeze:
        translations, _ = translations_of(config, draft)
        translations = signed_only(config.review_required, translations, today)[0]
        composed = [compose(config, d.path, conn, now=clock.now(), write=False)
                    for d in [draft, *translations]]
        if missing_signoff(config.review_required, draft.status, draft.approved_by, today) \
                or any(p.severity == "error" for c in composed for p in check_issue(
                    c.draft, c.edition, item_count=len(c.snapshot.items))):
            refused.append(draft.issue)
            continue
        segments = Segmenter(config, composed)
        for sub in _audience(config, conn):
            choice = segments.choose(sub.language, sub.tags)
            if choice.outcome != "send":  # outside the audience, or nothing for them
                continue
            edition = segments.edition(choice.language, choice.variant)
            mid = message_id(edition.issue, sub.email, envelope.domain)
            size += len(build_message(edition, envelope, Personal(
                sub.email, sub.name, url_of(sub.email), mid, paths.mailto(sub.email)),
                clock.now()))
            count += 1
    count += store_claims.count_due(conn, list(plan.open_issues), clock.now())
    issues = [d.issue for d in plan.to_freeze if d.issue not in refused] + list(plan.open_issues)
    if count:
        note = (f"dry run: would send {count} message(s) for {', '.join(issues)}"
                f" via {mail.transport}"
                + (f", {size / count / 1024:.1f} KB each" if size else ""))
    else:
        note = "dry run: would send nothing now" + (
            f"; waiting: {', '.join(plan.waiting)}" if plan.waiting else "")
    if refused:
        note += f"; would refuse {', '.join(refused)} (run `newsletter check`)"
    return note, tuple(f"{issue}: would not be sent: check reports errors"
                       for issue in refused) + tuple(
        held_line(issue, why) for issue, why in plan.off_schedule)


def _audience(config: Config, conn: Db) -> Iterator[Subscriber]:
    """Who a send would freeze now: the active subscribers, and the new addresses in the
    subscriber CSV files the real run imports first (read here, not written)."""
    seen = set()
    for sub in store_subscribers.iter_subscribers(conn, "active"):
        seen.add(sub.email.lower())
        yield sub
    for path in config.subscriber_files:
        try:
            parsed = read_csv(path, default_language=config.default_language)
        except NewsletterError:
            continue  # the real run reports it
        for sub in parsed.subscribers:
            if sub.email.lower() not in seen and \
                    store_subscribers.get_subscriber(conn, sub.email) is None:
                seen.add(sub.email.lower())
                yield sub
