"""Segments and sign-off for `check` (who would get the issue now) and `status` (as frozen)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.audience.consent import plan_import
from newsletter.audience.subscribers import read_csv
from newsletter.compose.audience_spec import clean_tags
from newsletter.compose.drafts import draft_path, load_draft
from newsletter.compose.edition import Composed, compose
from newsletter.compose.only_sections import ATTRIBUTE, markers, where
from newsletter.compose.signoff import missing_signoff, signed_only
from newsletter.compose.snapshot import read_snapshot, snapshot_path
from newsletter.config import Config
from newsletter.deliver.plan import translations_of
from newsletter.deliver.segmenting import Choice, Segmenter, drafts_need_segments
from newsletter.errors import NewsletterError
from newsletter.store import segments as store_segments
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import database_url, open_store, store_exists
from newsletter.store.db import Db
from newsletter.store.segments import Reader, SegmentCount

Finding = tuple[str, str, str]  # (severity, where, message), as check.Problem takes them


@dataclass(frozen=True)
class SegmentCheck:
    findings: tuple[Finding, ...]
    lines: tuple[str, ...]  # "segments now: ..." lines check prints before its summary


def variant_label(variant: str) -> str:
    return "plain" if not variant else "+" + "+".join(variant.split(","))


def describe_counts(language: str, counts: Iterable[SegmentCount]) -> str:
    """'en (everyone): 4 plain, 2 +geneva; 1 empty (not sent); 3 outside the audience'."""
    rows = list(counts)
    audience = rows[0].audience if rows else "everyone"
    sent = [f"{c.readers} {variant_label(c.variant)}" for c in rows if c.outcome == "send"]
    parts = [", ".join(sent) or "nobody"]
    empty = sum(c.readers for c in rows if c.outcome == "empty")
    outside = sum(c.readers for c in rows if c.outcome == "excluded")
    if empty:
        parts.append(f"{empty} with no section for them (not sent)")
    if outside:
        parts.append(f"{outside} outside the audience")
    return f"{language} ({audience}): " + "; ".join(parts)


def status_lines(conn: Db, key: str) -> list[str]:
    """The frozen segments of a ledger key, one line per edition; none for a plain issue."""
    by_language: dict[str, list[SegmentCount]] = {}
    for count in store_segments.frozen_counts(conn, key):
        by_language.setdefault(count.language, []).append(count)
    return [f"segments: {describe_counts(lang, rows)}" for lang, rows in by_language.items()]


def readers_now(config: Config, conn: Db | None) -> Iterator[Reader]:
    """Who a send would look at now: the active subscribers, then the new addresses of the
    configured CSV files (read, not imported)."""
    seen = set()
    if conn is not None:
        for reader in store_segments.active_readers(conn):
            seen.add(reader.email.lower())
            yield reader
    for path in config.subscriber_files:
        try:
            parsed = read_csv(path, default_language=config.default_language)
        except NewsletterError:
            continue  # import reports it
        rows = parsed.subscribers
        if conn is not None:  # a forgotten reader's line is skipped by import, so here too
            rows = plan_import(conn, config, str(path), rows, parsed.lines,
                               datetime.now(UTC)).subscribers
        for sub in rows:
            if sub.email.lower() not in seen and (
                    conn is None or store_subscribers.get_subscriber(conn, sub.email) is None):
                seen.add(sub.email.lower())
                yield Reader(0, sub.email, sub.language, sub.tags)


def check_segments(config: Config, composed: Composed, now: datetime) -> SegmentCheck:
    """Sign-off errors, unknown tags and empty variants as findings; counts as lines."""
    draft = composed.draft
    findings: list[Finding] = []
    today = now.astimezone(config.timezone).date()
    if why := missing_signoff(config.review_required, draft.status, draft.approved_by, today):
        findings.append(("error", _front_line(draft.path, "approved_by:", "status:"), why))
    if config.review_required and draft.path == draft_path(config.issues_dir, draft.issue):
        for held in signed_only(True, translations_of(config, draft)[0], today)[1]:
            findings.append(("warning", str(draft.path), held.split(": ", 1)[1] +
                             " (its readers get this edition until it is approved)"))
    editions = _issue_editions(config, composed, now)
    if not editions:
        return SegmentCheck(tuple(findings), ())
    segmenter = Segmenter(config, editions)
    if not segmenter.needed:
        return SegmentCheck(tuple(findings), ())
    with _open(config) as conn:
        readers = list(readers_now(config, conn))
    found = segmenter.tally(readers)
    language = draft.language.lower()
    findings += _unknown_tags(composed, {t for r in readers for t in clean_tags(r.tags)})
    empty = sum(n for c, n in found.items() if c.language == language and c.outcome == "empty")
    if empty:
        findings.append(("warning", str(draft.path), (
            f"{empty} reader(s) of the '{language}' edition would get no section: every part "
            f"is for other tags and there are no feed items, so they are not sent this issue")))
    if readers and not any(c.outcome == "send" for c in found):
        findings.append(("warning", _front_line(draft.path, "audience:"),
                         "nobody would get this issue now (the audience leaves everyone out)"))
    shown = list(segmenter.composed) if language == segmenter.default else [language]
    lines = [f"segments now: {describe_counts(lang, _counts(found, lang, segmenter))}"
             for lang in shown if lang in segmenter.composed]
    return SegmentCheck(tuple(findings), tuple(lines))


def _counts(found: Counter[Choice], lang: str, segmenter: Segmenter) -> list[SegmentCount]:
    return [SegmentCount(c.language, c.variant, c.outcome, n, segmenter.describe(lang))
            for c, n in sorted(found.items(), key=lambda kv: kv[0].variant)
            if c.language == lang]


def _unknown_tags(composed: Composed, known: set[str]) -> list[Finding]:
    if not known:
        return []  # no list to compare with (a new project): nothing to say
    draft, found = composed.draft, []
    for m in markers(draft.body):
        for tag in sorted(m.tags - known) if m.name == ATTRIBUTE else ():
            found.append(("warning", where(draft.path, draft.body, m.line),
                          f"{{{ATTRIBUTE}={tag}}}: no subscriber has the tag {tag!r}, so no "
                          "one sees this part (a typo?)"))
    if draft.audience:
        for tag in sorted(draft.audience.named_tags - known):
            found.append(("warning", _front_line(draft.path, "audience:"),
                          f"audience: no subscriber has the tag {tag!r} (a typo?)"))
    return found


def _issue_editions(config: Config, composed: Composed, now: datetime) -> list[Composed]:
    """The editions a send would freeze now, default first, with the checked one among them
    whatever its status (the editor wants to know who it will reach)."""
    draft = composed.draft
    default_path = draft_path(config.issues_dir, draft.issue)
    if draft.path != default_path:
        try:
            default = load_draft(default_path, timezone=config.timezone,
                                 default_language=config.default_language)
            if not drafts_need_segments([(draft, len(composed.snapshot.items)),
                                         (default, _item_count(default_path))]):
                return [composed]  # nothing to count: the default's rendering is not needed
            return [compose(config, default_path, None, now=now, write=False,
                            pull_missing=False), composed]
        except NewsletterError:
            return []
    translations, _ = translations_of(config, draft)
    signed = signed_only(config.review_required, translations,
                         now.astimezone(config.timezone).date())[0]
    drafts = [(composed.draft, len(composed.snapshot.items))] + [
        (d, _item_count(d.path)) for d in signed]
    if not drafts_need_segments(drafts):
        return [composed]  # a plain issue: rendering its translations would tell nothing
    editions = [composed]
    for other in signed:
        with contextlib.suppress(NewsletterError):
            editions.append(compose(config, other.path, None, now=now, write=False,
                                    pull_missing=False))
    return editions


def _item_count(path: Path) -> int:
    try:
        return len(read_snapshot(snapshot_path(path)).items)
    except (OSError, NewsletterError):
        return 0


@contextlib.contextmanager
def _open(config: Config) -> Iterator[Db | None]:
    url = database_url(config)
    if not store_exists(url):  # check creates no database
        yield None
        return
    conn = open_store(url)
    try:
        yield conn
    finally:
        conn.close()


def _front_line(path: Path, *needles: str) -> str:
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError):
        return str(path)
    for needle in needles:
        for number, line in enumerate(lines, 1):
            if line.startswith(needle):
                return f"{path}:{number}"
    return str(path)
