"""`newsletter check`: every problem with an issue at once, each naming its file and line."""

from __future__ import annotations

import html
import json
import re
import shlex
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import markdown

from newsletter.compose.a11y import reading_problems
from newsletter.compose.drafts import Draft, content_hash
from newsletter.compose.edition import edition_language
from newsletter.compose.frontmatter_lint import lint_draft
from newsletter.compose.only_sections import marker_findings
from newsletter.compose.parts import html_wire_size
from newsletter.compose.personalise import KNOWN, placeholder_lookalikes
from newsletter.compose.snapshot import snapshot_path
from newsletter.compose.template_hints import hint_message, leftover_hints, template_hints
from newsletter.compose.translate import read_sidecar, sidecar_path, stale_sections
from newsletter.model import Edition
from newsletter.netguard import Resolver, local_name_reason, private_only_hosts, system_resolver

GMAIL_CLIP_BYTES = 102 * 1024
HTML_LIMIT_BYTES = 100 * 1024  # a margin below Gmail's clip for headers and personal values
SUBJECT_WARN_CHARS = 78
_TEMPLATE_SYNTAX_RE = re.compile(r"\{\{|\{%|\{#")


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" or "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.links.append(a.get("href") or "")
        elif tag == "img":
            self.images.append((a.get("src") or "", a.get("alt")))


def check_issue(draft: Draft, edition: Edition, *, item_count: int,
                resolve: Resolver = system_resolver) -> list[Problem]:
    """Problems in the rendered edition, pointed back at the draft line where possible."""
    raw = draft.path.read_text(encoding="utf-8-sig") if draft.path.exists() else ""
    # A link or image that is not in the draft came from a feed item: point at the snapshot,
    # which is where the editor fixes it.
    snap_file = snapshot_path(draft.path)
    snap_raw = snap_file.read_text(encoding="utf-8") if snap_file.exists() else ""
    problems: list[Problem] = []

    def add(severity: str, needle: str, message: str) -> None:
        where = _locate(draft.path, raw, needle)
        if where == str(draft.path) and needle and needle in snap_raw:
            where = _locate(snap_file, snap_raw, needle)
        problems.append(Problem(severity, where, message))

    if not draft.preheader:
        add("warning", "subject:", "front matter: 'preheader' is empty; inboxes will show the "
            "first words of the body instead")
    if len(draft.subject) > SUBJECT_WARN_CHARS:
        add("warning", "subject:", f"subject is {len(draft.subject)} characters; inboxes "
            f"cut it near {SUBJECT_WARN_CHARS // 2}-{SUBJECT_WARN_CHARS}")
    if draft.status != "ready":
        add("warning", "status:", "status is 'draft': `send` skips it until it is 'ready'")
    # What the line scan found that does not stop the draft loading (Word bullets, ...).
    if draft.path.exists():
        problems += [Problem(p.severity, f"{draft.path}:{p.line}", p.message)
                     for p in lint_draft(draft.path.read_bytes()).problems]
    # The template's hints are the template file's paragraphs, read now (template_hints.py).
    ready = draft.status == "ready"
    for line_no, hint in leftover_hints(raw, template_hints(draft.path.parent / "_template.md")):
        problems.append(Problem("error" if ready else "warning", f"{draft.path}:{line_no}",
                                hint_message(hint, ready)))
    for match in _TEMPLATE_SYNTAX_RE.finditer(raw):
        line_text = raw[match.start():].split("\n", 1)[0]
        add("error", line_text, f"template syntax {match.group()!r} is sent literally: drafts "
            "are never templates")
    # Per-reader values go only where the template puts them; look-alikes are sent broken.
    for line_no, text in placeholder_lookalikes(raw):
        problems.append(Problem("error", f"{draft.path}:{line_no}", f"{text} is never filled "
                                "in: a draft cannot place a reader's name or link (the "
                                "template does); it is sent as text"))
    for line_no, text in placeholder_lookalikes(snap_raw):
        problems.append(Problem("warning", f"{snap_file}:{line_no}", f"{text} in a feed item is "
                                "sent as text, never filled in with a reader's name or link"))
    parser = _Links()
    parser.feed(edition.html)
    for line_no, (severity, message) in _stripped_constructs(raw):
        problems.append(Problem(severity, f"{draft.path}:{line_no}", message))
    # {only=tag} heading markers that cannot work as written (newsletter.only_sections)
    problems += [Problem(*found) for found in marker_findings(draft.path, draft.body)]
    for href in parser.links:
        if not href:
            continue  # the sanitiser removed an unsafe URL: reported above at its line
        if not href.startswith(("https://", "http://", "mailto:")) and href not in KNOWN:
            add("error", href or "]()", f"link {href!r} is not an absolute http(s) URL")
    for src, alt in parser.images:
        if alt is None or not alt.strip():
            add("error", src, f"image {src!r} has no alt text")
        if not src.startswith(("https://", "http://")):
            add("error", src, f"image {src!r} is not an absolute http(s) URL")
    for severity, url, message in _unreachable(parser, raw + snap_raw, resolve):
        add(severity, url, message)
    for severity, needle, message in reading_problems(edition.html):
        add(severity, needle, message)
    size, wire = len(edition.html.encode("utf-8")), html_wire_size(edition.html)
    if max(size, wire) > HTML_LIMIT_BYTES:
        add("error", "", f"HTML is {size / 1024:.0f} KB after inlining, {wire / 1024:.0f} KB "
            f"on the wire; Gmail clips messages over {GMAIL_CLIP_BYTES // 1024} KB (keep it "
            f"under {HTML_LIMIT_BYTES // 1024} KB)")
    if item_count == 0:
        add("warning", "feeds:", "no feed items: run `newsletter pull` or check the feeds")
    return problems


def _unreachable(parser: _Links, sources: str,
                 resolve: Resolver) -> list[tuple[str, str, str]]:
    """Images (errors) and links (warnings) from the draft or its feed items whose host readers
    cannot reach: a private or loopback address, a local-only name, or a name whose every DNS
    answer is private. The template's own links (base_url) are the config's business."""
    def host(url: str) -> str:
        try:
            return urlsplit(url).hostname or ""
        except ValueError:
            return ""

    urls = [("error", "image", src) for src, _ in parser.images] + \
        [("warning", "link", href) for href in parser.links]
    urls = [(s, k, u) for s, k, u in urls if host(u) and u.startswith(("http://", "https://"))
            and (u in sources or html.escape(u) in sources)]
    private = private_only_hosts({host(u) for _, _, u in urls}, resolve)
    found, seen = [], set()
    for severity, kind, url in urls:
        reason = local_name_reason(host(url)) or private.get(host(url), "")
        if reason and url not in seen:
            seen.add(url)
            found.append((severity, url, f"{kind} {url!r} is on {host(url)}, {reason}: "
                          "subscribers cannot reach it"))
    return found


_REMOVED_TAG_RE = re.compile(r"<(script|iframe|form|object|embed|style|svg|input|button)\b",
                             re.IGNORECASE)
_HANDLER_RE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


def _stripped_constructs(raw: str) -> list[tuple[int, tuple[str, str]]]:
    """What the sanitiser will remove from the draft, by line: the editor should know."""
    found = []
    for number, line in enumerate(raw.split("\n"), 1):
        for url in _unsafe_urls(line):
            scheme = url.split(":", 1)[0]
            found.append((number, ("error", f"a {scheme}: link is not allowed in email "
                                            "(use an absolute https:// URL)")))
        if match := _REMOVED_TAG_RE.search(line):
            found.append((number, ("warning", f"<{match.group(1).lower()}> is removed: email "
                                              "clients do not run or show it")))
        if _HANDLER_RE.search(line):
            found.append((number, ("warning", "event handler attributes (on...=) are removed")))
    return found


def _unsafe_urls(line: str) -> list[str]:
    """Link and image URLs on one Markdown line whose scheme is not http(s) or mailto, read
    the way a browser would (entities decoded, tabs and newlines dropped, any case)."""
    parser = _Links()
    parser.feed(markdown.markdown(line))
    urls = parser.links + [src for src, _ in parser.images]
    unsafe = []
    for url in urls:
        cleaned = re.sub(r"[\x00-\x20]", "", url).lower()
        scheme = cleaned.split(":", 1)[0] if ":" in cleaned else ""
        if scheme and scheme.isalpha() and scheme not in ("http", "https", "mailto"):
            unsafe.append(cleaned)
    return unsafe


def _locate(path: Path, raw: str, needle: str) -> str:
    if needle and (index := raw.find(needle)) >= 0:
        return f"{path}:{raw.count(chr(10), 0, index) + 1}"
    return str(path)


def check_editions(draft: Draft, default_language: str, subscriber_languages: dict[str, int],
                   default_draft: Path) -> list[Problem]:
    """Warnings about language editions: a language with subscribers but no edition, and a
    translation older than the default edition it was made from."""
    problems = []
    if draft.language == default_language:
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
    if not default_draft.exists():
        return [Problem("error", str(draft.path), f"no default edition {default_draft.name}")]
    if draft.translated_sections:
        return _stale_section_problems(draft, default_draft)
    current = content_hash(default_draft)
    if not draft.translated_from:
        problems.append(Problem("warning", str(draft.path), (
            f"front matter: 'translated_from' is not set; when this translation matches "
            f"{default_draft.name}, set translated_from: \"{current}\"")))
    elif draft.translated_from != current:
        problems.append(Problem("warning", str(draft.path), (
            f"older than {default_draft.name} (translated from {draft.translated_from}, it is "
            f"now {current}): update the translation, then set translated_from: \"{current}\"")))
    return problems


def _stale_section_problems(draft: Draft, default_draft: Path) -> list[Problem]:
    """One warning per section of the default edition changed since it was translated, with
    a short diff when the sidecar (translate.sidecar_path) still holds the old text."""
    raw = draft.path.read_text(encoding="utf-8-sig")
    where = _locate(draft.path, raw, "translated_from:")
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
