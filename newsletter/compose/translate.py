"""Translations of the default edition: make one, and tell which of its sections are stale."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from newsletter import safe_files
from newsletter.compose.drafts import check_issue_id, split_front_matter
from newsletter.compose.sections import heading_chunks
from newsletter.errors import InputError

INTRO = "intro"  # the key of the text before the first heading
LANG_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$")
_TOP_KEY_RE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)\s*:")
DIFF_LINES = 8  # a reminder of what changed, not a review tool


@dataclass(frozen=True)
class SourceSection:
    key: str  # INTRO, or the heading's text (made unique with " (2)", " (3)")
    text: str  # the Markdown of the section, its heading line included, stripped

    @property
    def version(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class StaleSection:
    key: str
    was: str  # the version translated ("" for a section added since)
    now: str  # the version in the default edition ("" for a section removed since)
    diff: tuple[str, ...]  # a few unified-diff lines, when the old text is known


def source_sections(body: str) -> tuple[SourceSection, ...]:
    """The default edition's body cut where sections.split_sections cuts it (same patterns),
    each keyed by its heading so that moving a section does not make it stale."""
    chunks = heading_chunks(body, keep_heading=True)
    sections: list[SourceSection] = []
    seen: dict[str, int] = {}
    for title, lines in chunks:
        text = "\n".join(lines).strip()
        if not text:
            continue
        key = title or INTRO
        seen[key] = seen.get(key, 0) + 1
        sections.append(SourceSection(key if seen[key] == 1 else f"{key} ({seen[key]})", text))
    return tuple(sections)


def versions(sections: tuple[SourceSection, ...]) -> dict[str, str]:
    return {s.key: s.version for s in sections}


def sidecar_path(translation: Path) -> Path:
    """issues/2026-11.fr.md -> issues/2026-11.fr.source.yaml: the default's text it was made
    from, kept beside it (and in git with it) so `check` can show what changed since."""
    return translation.with_name(translation.name.removesuffix(".md") + ".source.yaml")


def write_sidecar(translation: Path, default: Path, texts: dict[str, str], *,
                  root: Path) -> Path:
    path = sidecar_path(translation)
    data = {"source": default.name, "sections": texts}
    text = (f"# The text of {default.name} that {translation.name} was translated from, one\n"
            "# entry per section (written by `newsletter new` and `newsletter translate import`).\n"
            "# `newsletter check` diffs it against today's text; do not edit it by hand.\n")
    text += yaml.dump(data, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False,
                      width=1000)
    safe_files.write_text(path, text, root=root)
    return path


class _BlockDumper(yaml.SafeDumper):
    """Multi-line text as YAML literal blocks, so the sidecar reads like the draft."""


_BlockDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def read_sidecar(translation: Path) -> dict[str, str]:
    """Section key -> old text; {} when missing or unreadable (check then shows no diff)."""
    try:
        data = yaml.safe_load(sidecar_path(translation).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    sections = data.get("sections") if isinstance(data, dict) else None
    if not isinstance(sections, dict):
        return {}
    return {str(k): v for k, v in sections.items() if isinstance(v, str)}


def stale_sections(translated_from: dict[str, str], default_body: str,
                   old_text: dict[str, str]) -> list[StaleSection]:
    """Sections of the default edition changed, added or removed since the translation."""
    current = {s.key: s for s in source_sections(default_body)}
    stale = []
    for key, section in current.items():
        was = translated_from.get(key, "")
        if was != section.version:
            old = old_text.get(key, "")
            known = bool(old) and SourceSection(key, old).version == was
            stale.append(StaleSection(key, was, section.version,
                                      short_diff(old, section.text) if known else ()))
    stale += [StaleSection(key, was, "", ()) for key, was in translated_from.items()
              if key not in current]
    return stale


def short_diff(old: str, new: str, limit: int = DIFF_LINES) -> tuple[str, ...]:
    """A unified diff by sentence, so that a typo shows one sentence, not a paragraph."""
    lines = list(difflib.unified_diff(_sentences(old), _sentences(new), lineterm="", n=0))[2:]
    lines = [line for line in lines if not line.startswith("@@")]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return tuple(lines)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?:;。！？])\s+|\n+", text) if s.strip()]


def new_translation(issues_dir: Path, issue: str, language: str, default_language: str, *,
                    root: Path) -> Path:
    """Copy the default edition to ISSUE.LANG.md as a draft translated from today's text."""
    check_issue_id(issue)
    if not LANG_RE.match(language):
        raise InputError(f"language must look like fr or pt-BR, not {language!r}")
    if language == default_language:
        raise InputError(f"'{language}' is the default language: `newsletter new {issue}`")
    default = issues_dir / f"{issue}.md"
    target = issues_dir / f"{issue}.{language}.md"
    if target.exists():
        raise InputError("already exists; edit it, or delete it to start again", where=str(target))
    try:
        raw = default.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    except FileNotFoundError as exc:
        raise InputError(f"no default edition to translate (`newsletter new {issue}`)",
                         where=str(default)) from exc
    header, body = split_draft(default, raw)
    sections = source_sections(body)
    # A translation is its own edition: a draft until its translator says ready, and approved
    # only by its own reviewer (the default edition's approved_by is not this text's).
    header = set_front_keys(header, {"status": "draft", "approved_by": None,
                                     "translated_from": front_versions(versions(sections))})
    safe_files.write_text(target, f"---\n{header}---\n\n{body}", root=root)
    write_sidecar(target, default, {s.key: s.text for s in sections}, root=root)
    return target


def mark_translated(translation: Path, default: Path, keys: list[str], *,
                    root: Path) -> list[str]:
    """Record that the translation follows today's text of these sections of the default
    (all of them when none are named): their versions in translated_from, their text in the
    sidecar. Returns the keys marked."""
    raw = translation.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    header, body = split_draft(translation, raw)
    old = (yaml.safe_load(header) or {}).get("translated_from")
    old = old if isinstance(old, dict) else {}
    current = {s.key: s for s in source_sections(split_draft(default, default.read_text(
        encoding="utf-8-sig").replace("\r\n", "\n"))[1])}
    if unknown := [k for k in keys if k not in current]:
        raise InputError(f"no section {unknown[0]!r} in {default.name} (sections: "
                         f"{', '.join(current)})", where=str(translation))
    chosen = keys or list(current)
    texts = read_sidecar(translation)
    mapping = {k: str(old[k]) for k in current if k in old}
    for key in chosen:
        mapping[key], texts[key] = current[key].version, current[key].text
    mapping = {k: mapping[k] for k in current if k in mapping}  # the default's order
    texts = {k: texts[k] for k in current if k in texts}
    header = set_front_keys(header, {"translated_from": front_versions(mapping)})
    safe_files.write_text(translation, f"---\n{header}---\n\n{body}", root=root)
    write_sidecar(translation, default, texts, root=root)
    return chosen


def split_draft(path: Path, raw: str) -> tuple[str, str]:
    """(front matter lines ending in a newline, body); the draft's own checks apply."""
    split_front_matter(path, raw)  # refuses a draft without valid front matter, with its line
    end = re.search(r"^---[ \t]*$", raw[4:], re.MULTILINE)
    assert end is not None  # split_front_matter refused a draft without its closing ---
    header = raw[4:4 + end.start()]
    return header if header.endswith("\n") else header + "\n", raw[4 + end.end():].lstrip("\n")


def front_versions(versions_: dict[str, str]) -> str:
    """translated_from as a YAML block mapping; keys quoted (headings may hold ': ' or '#')."""
    return "\n" + "".join(f"  {json.dumps(k, ensure_ascii=False)}: \"{v}\"\n"
                          for k, v in versions_.items())


class RawFront(str):
    """A front-matter value copied as the editor wrote it: the text after `key:`, continuation
    lines included (see front_raw)."""


def set_front_keys(header: str, values: dict[str, str | None]) -> str:
    """Replace (or append) top-level keys of YAML front matter, leaving every other line as
    the editor wrote it. A value starting with a newline is a block (written as is); a
    RawFront is written as is; None removes the key."""
    out: list[str] = []
    skipping = False
    done: set[str] = set()
    for line in header.splitlines(keepends=True):
        match = _TOP_KEY_RE.match(line)
        if match or not line[:1].isspace():
            skipping = False
        if match and match["key"] in values:
            value = values[match["key"]]
            if value is not None:
                out.append(_front_line(match["key"], value))
            done.add(match["key"])
            skipping = True
        elif not skipping:
            out.append(line)
    out += [_front_line(k, v) for k, v in values.items() if k not in done and v is not None]
    return "".join(out)


def front_raw(header: str, key: str) -> RawFront | None:
    """The text of a top-level key as written (after `key:`, with its indented lines), or
    None when the front matter has no such key."""
    found: list[str] | None = None
    for line in header.splitlines(keepends=True):
        match = _TOP_KEY_RE.match(line)
        if found is not None and (match or not line[:1].isspace()):
            break
        if match and match["key"] == key:
            found = [line[match.end():]]
        elif found is not None:
            found.append(line)
    return None if found is None else RawFront("".join(found))


def _front_line(key: str, value: str) -> str:
    if isinstance(value, RawFront) or value.startswith("\n"):
        return f"{key}:{value}"
    return f"{key}: {json.dumps(value, ensure_ascii=False)}\n"
