"""Segments: which edition variant each reader of an issue gets, decided once, at freeze time.

A reader's edition is chosen by language as always (edition.edition_language). Then the
edition's audience (its own `audience:`, else the default draft's) may leave them out, and
the `{only=tag}` parts of that edition they have a tag for make their variant. The variant key
is the set of marker tags the reader has (only_sections.variant_key); one rendering per key.

Never empty: a variant with no content is sent to nobody. Content is what a reader opens
the mail for: a feed item, or a headed section (`#`/`##`) whose body has text or an image
after the parts that are not theirs are taken out. The introduction (text before the first
heading) and the headings themselves are not content, except in a letter that has no
headed section with a body and no feed item at all: there the introduction is the content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from newsletter.compose.audience_spec import Audience, clean_tags
from newsletter.compose.drafts import Draft
from newsletter.compose.edition import Composed, edition_language
from newsletter.compose.message import Envelope, Prepared, prepare
from newsletter.compose.only_sections import (
    key_tags,
    parts_seen,
    used_tags,
    variant_body,
    variant_key,
)
from newsletter.compose.render import render_edition
from newsletter.compose.sections import Section, split_sections
from newsletter.config import Config
from newsletter.deliver import ledger
from newsletter.deliver.reach import counted_editions
from newsletter.model import Edition
from newsletter.sanitize import plain_text
from newsletter.store import ledger as store_ledger
from newsletter.store import segments as store_segments
from newsletter.store.db import Db
from newsletter.store.editions import frozen_languages, load_edition
from newsletter.store.ledger import DeliveryRow, Freeze
from newsletter.store.segments import Reader, SegmentCount


@dataclass(frozen=True)
class Choice:
    language: str  # the edition
    variant: str
    outcome: str  # "send", "empty" (no content left: not sent) or "excluded" (audience)


def has_body(section: Section) -> bool:
    return bool(plain_text(section.html).strip()) or "<img" in section.html


def has_content(sections: Sequence[Section], full: Sequence[Section], item_count: int) -> bool:
    """The module's rule: feed items or a headed section with a body; the introduction only
    when the full edition has neither."""
    if item_count or any(s.title and has_body(s) for s in sections):
        return True
    if any(s.title and has_body(s) for s in full):
        return False
    return any(not s.title and has_body(s) for s in sections)


def drafts_need_segments(drafts: Iterable[tuple[Draft, int]]) -> bool:
    """Segmenter.needed from the drafts and their feed item counts, before any rendering."""
    return any(d.audience or used_tags(d.body) or not has_content(d.sections, d.sections, n)
               for d, n in drafts)


class Segmenter:
    """The segments of one issue, over its composed editions (the default one first)."""

    def __init__(self, config: Config, composed: Sequence[Composed], *,
                 fallback: Audience | None = None,
                 finish: Callable[[Edition], Edition] | None = None) -> None:
        """fallback: the audience of an edition without its own, when composed[0] is not the
        default draft (a late edition). finish: what the freeze does to each rendered
        variant, as it did to the composed editions (reach.counted_editions)."""
        self.config = config
        self.finish = finish or (lambda edition: edition)
        self.composed = {c.edition.language.lower(): c for c in composed}
        self.default = composed[0].edition.language.lower()
        fallback = fallback or composed[0].draft.audience
        self.audience: dict[str, Audience | None] = {
            lang: c.draft.audience or fallback for lang, c in self.composed.items()}
        self.used = {lang: used_tags(c.draft.body) for lang, c in self.composed.items()}
        self._content: dict[tuple[str, str], bool] = {}
        self._rendered: dict[tuple[str, str], Edition] = {}
        # Keys that show the same parts (geneva and lausanne for {only=geneva,lausanne})
        # share one rendering: (language, parts seen) -> edition.
        self._by_parts: dict[tuple[str, tuple[bool, ...]], Edition] = {}

    @property
    def needed(self) -> bool:
        """False for an issue without audience or markers whose editions all have content:
        the plain freeze does it all. (An edition with no content at all goes to no one.)"""
        return any(self.audience.values()) or any(self.used.values()) or not all(
            self.has_content(lang, "") for lang in self.composed)

    def choose(self, language: str, tags: Iterable[str], *, edition: str = "") -> Choice:
        lang = edition or edition_language(language, set(self.composed), self.default)
        audience = self.audience[lang]
        if audience is not None and not audience.admits(language, tags):
            return Choice(lang, "", "excluded")
        variant = variant_key(clean_tags(tags), self.used[lang])
        return Choice(lang, variant, "send" if self.has_content(lang, variant) else "empty")

    def _sections(self, lang: str, variant: str) -> tuple[Section, ...]:
        draft = self.composed[lang].draft
        if not self.used[lang]:
            return draft.sections
        return split_sections(variant_body(draft.body, key_tags(variant)))

    def has_content(self, lang: str, variant: str) -> bool:
        if (lang, variant) not in self._content:
            c = self.composed[lang]
            self._content[(lang, variant)] = has_content(
                self._sections(lang, variant), c.draft.sections, len(c.snapshot.items))
        return self._content[(lang, variant)]

    def edition(self, lang: str, variant: str = "") -> Edition:
        """The rendered variant (rendered once; the plain one is the composed edition when
        the edition has no markers)."""
        if (lang, variant) not in self._rendered:
            c = self.composed[lang]
            if not self.used[lang]:
                self._rendered[(lang, variant)] = c.edition
            else:
                parts = (lang, parts_seen(c.draft.body, key_tags(variant)))
                if parts not in self._by_parts:
                    draft = replace(c.draft, sections=self._sections(lang, variant))
                    self._by_parts[parts] = self.finish(
                        render_edition(self.config, draft, c.snapshot.items))
                self._rendered[(lang, variant)] = self._by_parts[parts]
        return self._rendered[(lang, variant)]

    def base_editions(self) -> list[Edition]:
        """What the editions table holds: each language's plain variant (no `only` part),
        the default first. The web view and the archive show it."""
        return [self.edition(lang) for lang in self.composed]

    def tally(self, readers: Iterable[Reader], *, render: bool = False) -> Counter[Choice]:
        """How many readers each choice takes; render=True renders each variant to be sent
        (before the freeze's transaction, so that it holds the write lock briefly)."""
        return self.assign(readers, render=render)[1]

    def assign(self, readers: Iterable[Reader], *, edition: str = "", render: bool = True
               ) -> tuple[list[DeliveryRow], Counter[Choice]]:
        """The pending rows (reader, edition, variant) and how many readers each choice
        took; each variant to be sent is rendered (in the order first met: the order its
        counted links get their ids in)."""
        rows: list[DeliveryRow] = []
        found: Counter[Choice] = Counter()
        for reader in readers:
            choice = self.choose(reader.language, reader.tags, edition=edition)
            found[choice] += 1
            if choice.outcome == "send":
                rows.append((reader.id, choice.language, choice.variant))
        if render:
            for choice in found:
                if choice.outcome == "send":
                    self.edition(choice.language, choice.variant)
        return rows, found

    def describe(self, lang: str) -> str:
        audience = self.audience[lang]
        return audience.describe() if audience else "everyone"

    def frozen(self, key: str, rows: list[DeliveryRow], found: Counter[Choice],
               editions: Sequence[Edition], item_ids: Iterable[str] = ()) -> Freeze:
        """What the freeze writes for these rows: each variant's edition and the counts
        `status` shows."""
        return Freeze(key, tuple(editions), rows, variants=tuple(
            (c.variant, self.edition(c.language, c.variant)) for c in found
            if c.outcome == "send" and c.variant), counts=tuple(
            SegmentCount(c.language, c.variant, c.outcome, count, self.describe(c.language))
            for c, count in found.items()), item_ids=tuple(item_ids))


def prepared_editions(conn: Db, keys: Iterable[str],
                      envelope: Envelope) -> dict[tuple[str, str, str], Prepared]:
    """Every frozen edition and variant the rows of these ledger keys name, encoded once."""
    prepared = {}
    for key in keys:
        for lang in frozen_languages(conn, key):
            prepared[(key, lang, "")] = prepare(load_edition(conn, key, lang), envelope)
        for lang, variant in store_segments.delivery_variants(conn, key):
            prepared[(key, lang, variant)] = prepare(
                store_segments.load_variant(conn, key, lang, variant), envelope)
    return prepared


def freeze_issue(config: Config, conn: Db, composed: Sequence[Composed],
                 item_ids: Iterable[str], now: datetime) -> tuple[int, str]:
    """ledger.freeze for one issue, with its segments when it has any. Returns (rows, a
    note on who was left out: "" when no one was)."""
    segmenter = Segmenter(config, composed, finish=counted(config, conn))
    if not segmenter.needed:
        return ledger.freeze(conn, [c.edition for c in composed], item_ids, now), ""
    issue = composed[0].edition.issue
    # Decided and rendered before the freeze's transaction (which holds the write lock);
    # a reader who leaves in between is suppressed when their row is claimed.
    rows, found = segmenter.assign(store_segments.active_readers(conn))
    frozen = segmenter.frozen(issue, rows, found, segmenter.base_editions(), item_ids)
    return store_ledger.freeze_issue(conn, frozen, now), left_out_note(found)


def counted(config: Config, conn: Db) -> Callable[[Edition], Edition]:
    """[reach] counted links for a rendered variant (link ids made in their own transaction,
    so variants are rendered before the freeze's)."""
    return lambda edition: counted_editions(config, conn, [edition])[0]


def left_out_note(found: Counter[Choice]) -> str:
    outside = sum(n for c, n in found.items() if c.outcome == "excluded")
    empty = sum(n for c, n in found.items() if c.outcome == "empty")
    parts = []
    if outside:
        parts.append(f"{outside} outside its audience")
    if empty:
        parts.append(f"{empty} with no section for them (not sent an empty email)")
    return "; ".join(parts)


def as_reader_with(config: Config, composed: Composed, tags: str) -> tuple[Composed, str]:
    """`build --tags`: the edition as a reader with these tags (CSV spelling) gets it, and its
    variant key ("" for the plain one)."""
    segmenter = Segmenter(config, [composed])
    lang = composed.edition.language.lower()
    variant = variant_key(clean_tags([tags]), segmenter.used[lang])
    draft = replace(composed.draft, sections=segmenter._sections(lang, variant))
    return replace(composed, draft=draft, edition=segmenter.edition(lang, variant)), variant
