"""The XLIFF 2.0 round trip of `newsletter translate`: export the default edition's text for
a translator (pre-filled from the translation memory), import a translated file as
ISSUE.LANG.md (every unit checked against the default edition), remember what was translated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from newsletter import safe_files
from newsletter.compose.drafts import ISSUE_RE, load_draft
from newsletter.compose.translate import (
    LANG_RE,
    front_raw,
    front_versions,
    set_front_keys,
    source_sections,
    split_draft,
    versions,
    write_sidecar,
)
from newsletter.compose.xliff import XliffFile, inline_xml, read_xliff, write_xliff
from newsletter.compose.xliff_checks import target_problems
from newsletter.compose.xliff_inline import plain_text
from newsletter.compose.xliff_segments import Document, render_body, split_document
from newsletter.config import Config
from newsletter.errors import DraftError, InputError
from newsletter.headers import header_text_problem
from newsletter.store import translations as store_translations
from newsletter.store.db import Db


@dataclass(frozen=True)
class Exported:
    path: Path
    units: int
    prefilled: int


@dataclass(frozen=True)
class Imported:
    path: Path
    units: int


def _default_edition(config: Config, issue: str) -> tuple[Path, Document, str]:
    """(path, units, front matter) of the default edition ISSUE (YYYY-MM or its .md path)."""
    path = Path(issue) if issue.endswith(".md") else config.issues_dir / f"{issue}.md"
    if not ISSUE_RE.match(path.name.removesuffix(".md")):
        raise InputError(f"{issue!r}: name the default edition (YYYY-MM); translations are "
                         "made from it")
    draft = load_draft(path, timezone=config.timezone, default_language=config.default_language)
    header, body = split_draft(path, path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n"))
    return path, split_document(draft.subject, draft.preheader, body), header


def export_issue(config: Config, conn: Db, issue: str, language: str,
                 out: Path | None) -> Exported:
    if not LANG_RE.match(language) or language == config.default_language:
        raise InputError(f"--lang must be a language other than {config.default_language!r} "
                         f"(fr, zh, pt-BR), not {language!r}")
    path, doc, _ = _default_edition(config, issue)
    units = [u for u in doc.units if u.translatable]
    memory = store_translations.recall_translations(conn, config.default_language, language,
                                       [inline_xml(u.content) for u in units])
    data = write_xliff(doc, source_language=config.default_language, target_language=language,
                       original=path.name, memory=memory)
    out = out or config.root / "build" / "xliff" / f"{path.stem}.{language}.xlf"
    safe_files.write_bytes(out, data, root=config.root)
    prefilled = sum(inline_xml(u.content) in memory for u in units)
    return Exported(out, len(units), prefilled)


def import_file(config: Config, conn: Db, file: Path, *,
                force: bool) -> Imported:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(file)) from exc
    xliff = read_xliff(data, str(file))
    issue, language = _file_languages(config, xliff, file)
    path, doc, header = _default_edition(config, issue)
    targets = _checked_targets(doc, xliff, file, path.name)
    target = config.issues_dir / f"{issue}.{language}.md"
    if target.exists() and not force:
        raise InputError("already exists; pass --force to replace it with the XLIFF's "
                         "translation", where=str(target))
    texts = {"subject": plain_text(targets["subject"]).strip()}
    if "preheader" in targets:
        texts["preheader"] = plain_text(targets["preheader"]).strip()
    problems = [f"unit {k}: {trouble}" for k, v in texts.items()
                if (trouble := header_text_problem(v))]
    if problems:
        raise DraftError(str(file), problems)
    sections = source_sections(split_draft(path, path.read_text(encoding="utf-8-sig"))[1])
    fields: dict[str, str | None] = {**texts,
                                     "translated_from": front_versions(versions(sections))}
    fields.update(_own_review_fields(target))
    text = f"---\n{set_front_keys(header, fields)}---\n\n{render_body(doc, targets)}"
    safe_files.write_text(target, text, root=config.root)
    write_sidecar(target, path, {s.key: s.text for s in sections}, root=config.root)
    units = {u.id: u for u in doc.units}
    store_translations.remember_translations(conn, config.default_language, language, issue,
                                [(inline_xml(units[k].content), inline_xml(v))
                                 for k, v in targets.items()])
    return Imported(target, len(targets))


def _file_languages(config: Config, xliff: XliffFile, file: Path) -> tuple[str, str]:
    """(issue, target language) from the file, each checked: the file names where it goes."""
    problems = []
    if xliff.source_language != config.default_language:
        problems.append(f"srcLang is {xliff.source_language!r}, not the default language "
                        f"{config.default_language!r}")
    language = xliff.target_language
    if not LANG_RE.match(language) or language == config.default_language:
        problems.append(f"trgLang {language!r} is not a translation language (fr, zh, pt-BR)")
    match = re.fullmatch(r"(\d{4}-\d{2})\.md", xliff.original)
    if not match or not ISSUE_RE.match(match[1]):
        problems.append(f"<file original> {xliff.original!r} is not an issue (YYYY-MM.md)")
    if problems:
        raise DraftError(str(file), problems)
    return match[1], language  # type: ignore[index]


def _checked_targets(doc: Document, xliff: XliffFile, file: Path, default: str) -> dict:
    units = {u.id: u for u in doc.units if u.translatable}
    problems, targets = [], {}
    for segment in xliff.segments:
        unit = units.get(segment.unit)
        if unit is None:
            problems.append(f"unit {segment.unit}: not in {default}")
        elif inline_xml(segment.source) != inline_xml(unit.content):
            problems.append(f"unit {unit.id}: the source differs from {default} (it changed "
                            "since the export): export again")
        elif trouble := target_problems(unit, segment.target):
            problems += trouble
        else:
            targets[unit.id] = segment.target
    problems += [f"unit {uid}: missing (export again)" for uid in units
                 if uid not in {s.unit for s in xliff.segments}]
    if problems:
        raise DraftError(str(file), problems)
    return targets


def _own_review_fields(target: Path) -> dict[str, str | None]:
    """status and approved_by of the translation being written: its own, when an earlier
    version exists (--force), else a draft with no approval. Never the default edition's: the
    English reviewer's approval does not cover the French text."""
    own: dict[str, str | None] = {"status": "draft", "approved_by": None}
    if not target.exists():
        return own
    try:
        header, _ = split_draft(target, target.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, InputError, DraftError):
        return own
    for key in own:
        if (raw := front_raw(header, key)) is not None:
            own[key] = raw
    return own
