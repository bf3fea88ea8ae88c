"""The freeze step of a send run: compose, check and freeze each due issue with its ready
language editions (segmenting.freeze_issue writes it)."""

from __future__ import annotations

from collections.abc import Callable

from newsletter.compose.check import check_issue
from newsletter.compose.edition import compose
from newsletter.compose.signoff import missing_signoff, signed_only
from newsletter.config import Config
from newsletter.deliver.faults import crash_point
from newsletter.deliver.plan import Plan, translations_of
from newsletter.deliver.reach import counted_composed
from newsletter.deliver.segmenting import freeze_issue
from newsletter.deliver.workers import Clock
from newsletter.errors import NewsletterError
from newsletter.store import ledger as store_ledger
from newsletter.store.db import Db


def freeze_due(config: Config, conn: Db, plan: Plan, clock: Clock,
               on_note: Callable[[str], None]) -> tuple[list[str], tuple[str, ...]]:
    """Compose, check and freeze each due issue with its ready language editions. An issue
    with an error in any edition is refused whole; the other issues go on."""
    frozen, problems = [], []
    for draft in plan.to_freeze:
        translations, unreadable = translations_of(config, draft)
        today = clock.now().astimezone(config.timezone).date()
        if why := missing_signoff(config.review_required, draft.status, draft.approved_by,
                                  today):
            problems.append(f"{draft.issue}: not sent: {draft.path}: {why}")
            continue
        translations, unsigned = signed_only(config.review_required, translations, today)
        for line in unsigned:
            on_note(line)
        composed, errors = [], list(unreadable)
        for edition in [draft, *translations]:
            try:
                composed.append(compose(config, edition.path, conn, now=clock.now()))
            except NewsletterError as exc:
                errors.append(str(exc))
                continue
            errors += [f"{edition.path}: {p.message}" for p in check_issue(
                composed[-1].draft, composed[-1].edition,
                item_count=len(composed[-1].snapshot.items)) if p.severity == "error"]
        if errors:
            problems.append(f"{draft.issue}: not sent: {len(errors)} error(s); first: "
                            f"{errors[0]} (run `newsletter check` on each edition)")
            continue
        items = {i.id for c in composed for i in c.snapshot.items}
        composed = counted_composed(config, conn, composed)  # [reach]: links via /r/
        rows, left_out = freeze_issue(config, conn, composed, sorted(items), clock.now())
        crash_point("after-freeze")
        languages = ", ".join(c.edition.language for c in composed)
        if not rows and (queued := _queued(conn, draft.issue)):
            # Another sender froze it between our plan and our freeze: we send from its rows.
            on_note(f"{draft.issue}: frozen by another sender ({queued} subscriber(s)); "
                    "sending from that freeze")
        else:
            on_note(f"{draft.issue}: edition(s) {languages} frozen, {rows} subscriber(s) to "
                    "send to" + (f"; {left_out}" if left_out else ""))
        frozen.append(draft.issue)
    return frozen, tuple(problems)


def _queued(conn: Db, issue: str) -> int:
    """The issue's rows in the ledger, whoever froze it."""
    return sum(store_ledger.counts(conn, issue).get(issue, {}).values())
