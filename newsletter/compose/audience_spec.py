"""Who gets an issue: the `audience:` front matter (tags, exclude_tags, languages), read and
matched against a reader's language and CSV tags."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The CSV's own rule (subscribers.clean_tags): tags are lower case, split on ; , or |.
_TAG_SPLIT_RE = re.compile(r"[;,|]")
_TAG_RE = re.compile(r"^[^\s{}=\[\]]+(?: [^\s{}=\[\]]+)*$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
_KEYS = ("tags", "exclude_tags", "languages")


def clean_tags(values: Iterable[str]) -> frozenset[str]:
    """Tags as the subscriber table holds them: lower case, trimmed, empty ones dropped."""
    found: set[str] = set()
    for value in values:
        found.update(t.strip().lower() for t in _TAG_SPLIT_RE.split(value))
    return frozenset(t for t in found if t)


def primary(language: str) -> str:
    return (language or "").lower().split("-")[0]


@dataclass(frozen=True)
class Audience:
    """An issue (or one language edition) goes to the readers who have at least one of `tags`
    (any reader when empty), none of `exclude_tags`, and whose own language is one of
    `languages` (any when empty; fr-CA counts as fr)."""

    tags: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()

    def admits(self, language: str, tags: Iterable[str]) -> bool:
        own = clean_tags(tags)
        if self.tags and not own & self.tags:
            return False
        if own & self.exclude_tags:
            return False
        lang = (language or "").lower()
        return not self.languages or lang in self.languages or primary(lang) in self.languages

    @property
    def named_tags(self) -> frozenset[str]:
        return self.tags | self.exclude_tags

    def describe(self) -> str:
        """One line for check, status and the ledger: 'tags geneva, lausanne; not staff'."""
        parts = []
        if self.tags:
            parts.append("tags " + ", ".join(sorted(self.tags)))
        if self.exclude_tags:
            parts.append("not " + ", ".join(sorted(self.exclude_tags)))
        if self.languages:
            parts.append("languages " + ", ".join(sorted(self.languages)))
        return "; ".join(parts) or "everyone"


def parse_audience(value: object) -> tuple[Audience | None, list[str]]:
    """The front matter's `audience:` mapping; (None, problems) when it is not usable. Each
    problem is a phrase that follows "'audience' " in the draft's error line."""
    if not isinstance(value, dict):
        return None, ["must be a mapping, e.g. audience: {tags: [geneva], exclude_tags: [staff]}"]
    problems: list[str] = []
    found: dict[str, frozenset[str]] = {}
    for key, items in value.items():
        if key not in _KEYS:
            problems.append(f"has an unknown key {str(key)[:40]!r} (known: {', '.join(_KEYS)})")
            continue
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.append(f"'{key}' must be a list of names, e.g. {key}: [geneva]")
            continue
        cleaned = clean_tags(items) if key != "languages" else \
            frozenset(i.strip().lower().replace("_", "-") for i in items if i.strip())
        bad = sorted(t for t in cleaned if not (
            _LANGUAGE_RE.match(t) if key == "languages" else _TAG_RE.match(t)))
        if bad:
            what = "language codes like 'fr'" if key == "languages" else "plain tag names"
            problems.append(f"'{key}' must hold {what}, not {bad[0][:40]!r}")
            continue
        found[key] = cleaned
    both = found.get("tags", frozenset()) & found.get("exclude_tags", frozenset())
    if both:
        problems.append(f"names {sorted(both)[0]!r} in both tags and exclude_tags")
    if problems:
        return None, problems
    return Audience(found.get("tags", frozenset()), found.get("exclude_tags", frozenset()),
                    found.get("languages", frozenset())), []
