"""`newsletter check` on language editions: missing ones, and translations out of date."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from newsletter.compose.check import Problem, locate
from newsletter.compose.drafts import Draft, content_hash
from newsletter.compose.edition import edition_language
from newsletter.compose.translate import read_sidecar, sidecar_path, stale_sections


def check_editions(draft: Draft, default_language: str, subscriber_languages: dict[str, int],
                   default_draft: Path) -> list[Problem]:
    """Warnings about language editions: a language with subscribers but no edition, and a
    translation older than the default edition it was made from."""
    if draft.language == default_language:
        return _missing_editions(draft, default_language, subscriber_languages)
    if not default_draft.exists():
        return [Problem("error", str(draft.path), f"no default edition {default_draft.name}")]
    if draft.translated_sections:
        return _stale_section_problems(draft, default_draft)
    current = content_hash(default_draft)
    if not draft.translated_from:
        return [Problem("warning", str(draft.path), (
            f"front matter: 'translated_from' is not set; when this translation matches "
            f"{default_draft.name}, set translated_from: \"{current}\""))]
    if draft.translated_from != current:
        return [Problem("warning", str(draft.path), (
            f"older than {default_draft.name} (translated from {draft.translated_from}, it is "
            f"now {current}): update the translation, then set translated_from: \"{current}\""))]
    return []


def _missing_editions(draft: Draft, default_language: str,
                      subscriber_languages: dict[str, int]) -> list[Problem]:
    problems = []
    available = {default_language} | {
        p.name.split(".")[1].lower() for p in draft.path.parent.glob(f"{draft.issue}.*.md")
        if p.name.count(".") == 2}
    for language, count in sorted(subscriber_languages.items()):
        # The same rule as send (ar-EG reads the ar edition), so the two never disagree.
        chosen = edition_language(language, available, default_language)
        edition = draft.path.with_name(f"{draft.issue}.{language.split('-')[0]}.md")
        if chosen == default_language and language.split("-")[0] != default_language:
            problems.append(Problem("warning", str(draft.path), (
                f"no '{language}' edition ({edition.name}): {count} active subscriber(s) "
                f"in '{language}' will get the '{default_language}' edition")))
    return problems


def _stale_section_problems(draft: Draft, default_draft: Path) -> list[Problem]:
    """One warning per section of the default edition changed since it was translated, with
    a short diff when the sidecar (translate.sidecar_path) still holds the old text."""
    raw = draft.path.read_text(encoding="utf-8-sig")
    where = locate(draft.path, raw, "translated_from:")
    body = default_draft.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    body = body.split("\n---", 1)[1] if "\n---" in body else body
    edition = draft.path.name.removesuffix(".md")
    problems = []
    for s in stale_sections(dict(draft.translated_sections), body, read_sidecar(draft.path)):
        key = json.dumps(s.key, ensure_ascii=False)
        if not s.now:
            text = (f"section {key} is no longer in {default_draft.name}: remove it from the "
                    f"translation, then `newsletter translate done {edition}`")
        elif not s.was:
            text = (f"section {key} is new in {default_draft.name}: translate it, then "
                    f"`newsletter translate done {edition} {shlex.quote(s.key)}`")
        else:
            text = (f"section {key} of {default_draft.name} changed since it was translated "
                    f"({s.was} -> {s.now}): update it, then "
                    f"`newsletter translate done {edition} {shlex.quote(s.key)}`")
        if s.was and s.now and not s.diff:
            text += " (the text it was translated from is not in " \
                    f"{sidecar_path(draft.path).name}, so no diff)"
        problems.append(Problem("warning", where, "\n    ".join((text, *s.diff))))
    return problems
