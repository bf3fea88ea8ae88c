"""Late editions: a translation that becomes ready within the month goes to the readers who
got another edition only because theirs was missing, once each (ledger key ISSUE+LANG)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from newsletter.compose.check import check_issue
from newsletter.compose.drafts import draft_path, load_draft
from newsletter.compose.edition import compose, edition_language
from newsletter.compose.signoff import signed_only
from newsletter.config import Config
from newsletter.deliver import ledger
from newsletter.deliver.plan import translations_of
from newsletter.deliver.reach import counted_composed
from newsletter.deliver.segmenting import Segmenter, counted
from newsletter.errors import NewsletterError
from newsletter.model import Edition
from newsletter.store import ledger as store_ledger
from newsletter.store import segments as store_segments
from newsletter.store.db import Db
from newsletter.store.editions import frozen_languages, has_edition, late_key
from newsletter.store.ledger import Freeze


def freeze_late_editions(config: Config, conn: Db, now: datetime, *,
                         only: str | None = None,
                         on_note: Callable[[str], None] = lambda line: None
                         ) -> tuple[list[str], list[str]]:
    """(ledger keys with new rows, problems). An edition with an error is held, with a
    problem line, and tried again on the next run; the issue's other editions are unaffected."""
    keys, problems = [], []
    for issue in ledger.late_issues_open(conn, now):
        if only and issue != only:
            continue
        path = draft_path(config.issues_dir, issue)
        if not path.exists():
            continue
        try:
            default = load_draft(path, timezone=config.timezone,
                                 default_language=config.default_language)
        except NewsletterError:
            continue  # the default edition went out frozen; its draft's later state is moot
        frozen = {lang.lower() for lang in frozen_languages(conn, issue)}
        translations, _ = translations_of(config, default)
        translations = [d for d in translations if d.language.lower() not in frozen]
        translations, unsigned = signed_only(config.review_required, translations,
                                             now.astimezone(config.timezone).date())
        for line in unsigned:
            on_note(line)
        for draft in translations:
            try:
                composed = compose(config, draft.path, conn, now=now)
            except NewsletterError as exc:
                problems.append(f"{issue} ({draft.language}): late edition held: {exc}")
                continue
            errors = [p for p in check_issue(composed.draft, composed.edition,
                                             item_count=len(composed.snapshot.items))
                      if p.severity == "error"]
            if errors:
                problems.append(f"{issue} ({draft.language}): late edition held: {errors[0]}")
                continue
            composed = counted_composed(config, conn, [composed])[0]  # [reach]
            segments = Segmenter(config, [composed], fallback=default.audience,
                                 finish=counted(config, conn))
            lang = composed.edition.language.lower()
            if segments.needed:  # render the variants before freeze_late's transaction
                segments.tally(store_segments.active_readers(conn), render=True)
            rows = freeze_late(conn, segments.edition(lang), config.default_language, now,
                               segments if segments.needed else None)
            on_note(f"{issue}: late '{draft.language}' edition frozen, {rows} reader(s) who got "
                    "another edition will get it")
            keys.append(late_key(issue, draft.language))
    return keys, problems


def freeze_late(conn: Db, edition: Edition, default: str, now: datetime,
                segments: Segmenter | None = None) -> int:
    """Add a language edition to an issue sent without it, and queue it (key ISSUE+LANG) for
    the readers who got another edition only because theirs was missing then; with
    `segments`, each with their variant (readers outside its audience or with an empty
    variant get none). Once: a second call finds the edition frozen and adds nothing."""
    if has_edition(conn, edition.issue, edition.language):
        return 0
    key, language = late_key(edition.issue, edition.language), edition.language.lower()
    earlier = {lang.lower() for lang in frozen_languages(conn, edition.issue)}
    readers = [sub_id for sub_id, lang, got in store_ledger.sent_to_active(conn, edition.issue)
               if got.lower() != language
               and edition_language(lang, earlier | {language}, default) == language]
    if segments is None:
        frozen = Freeze(key, (edition,), [(sub_id, edition.language, "") for sub_id in readers])
    else:
        rows, found = segments.assign(store_segments.active_readers(conn, readers),
                                      edition=language)
        frozen = segments.frozen(key, rows, found, [edition])
    return store_ledger.freeze_late(conn, frozen, now)
