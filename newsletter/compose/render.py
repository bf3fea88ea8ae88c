"""Render an edition: draft + feed items through the Jinja templates, then inline the CSS once."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import jinja2
from babel.dates import format_skeleton
from markupsafe import Markup

from newsletter.compose.drafts import Draft
from newsletter.compose.event_dates import event_title_line, split_event_title
from newsletter.compose.feeds import FeedItem
from newsletter.compose.inline import break_lines, inline_css
from newsletter.compose.personalise import Placeholders, neutralise, seal_slots
from newsletter.compose.textify import html_to_text
from newsletter.compose.textwidth import hanging, underline
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, babel_locale, direction, gettext_for, translations
from newsletter.model import Edition


@dataclass(frozen=True)
class FeedSection:
    title: str
    kind: str
    items: tuple[FeedItem, ...]


def make_environment(templates_dir: Path, language: str = "en") -> jinja2.Environment:
    """Autoescaped HTML templates, unescaped text ones, StrictUndefined for both, and the
    language's gettext catalog behind {{ _("...") }} (jinja2.ext.i18n, new-style)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # added by the jinja2.ext.i18n extension at runtime, unknown to the type stubs
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language), newstyle=True)
    env.filters["text"] = html_to_text
    env.filters["hanging"] = hanging  # plain-text lines by display width (CJK is 2 columns)
    env.filters["underline"] = underline
    return env


def view_online_url(config: Config, issue: str, language: str) -> str:
    suffix = "" if language == config.default_language else f"/{language}"
    return f"{config.base_url}/issues/{issue}{suffix}"


def render_edition(config: Config, draft: Draft, items: tuple[FeedItem, ...]) -> Edition:
    """Render HTML and text for one draft and its snapshot items; inline CSS once."""
    markers = Placeholders.for_one_render()
    context = _context(config, _neutral_draft(draft), tuple(map(_neutral_item, items)))
    context["recipient"] = markers
    env = make_environment(config.templates_dir, draft.language)
    try:
        html = env.get_template("email.html.j2").render(context)
        text = env.get_template("email.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise InputError(f"template error: {exc.message}",
                         where=_template_location(exc, config.templates_dir)) from exc
    return Edition(
        issue=draft.issue, language=draft.language, subject=draft.subject,
        preheader=draft.preheader, html=seal_slots(break_lines(inline_css(html)), markers),
        text=seal_slots(_tidy_text(text), markers), fallback_name=context["fallback_name"],
    )


# Draft and feed text can never fill a per-recipient slot: look-alikes are broken before
# rendering, and after inlining only the markers of this one render become slots.
def _neutral_draft(draft: Draft) -> Draft:
    sections = tuple(replace(s, title=neutralise(s.title), html=neutralise(s.html))
                     for s in draft.sections)
    return replace(draft, subject=neutralise(draft.subject),
                   preheader=neutralise(draft.preheader), sections=sections)


def _neutral_item(item: FeedItem) -> FeedItem:
    return replace(item, title=neutralise(item.title), link=neutralise(item.link),
                   summary=neutralise(item.summary), feed=neutralise(item.feed),
                   section=neutralise(item.section))


def _template_location(exc: jinja2.TemplateError, templates_dir: Path) -> str:
    """file:line of a template error. Syntax errors carry them; runtime errors (StrictUndefined)
    do not, but Jinja rewrites the traceback so its innermost template frame names both."""
    filename, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if not filename:
        tb = exc.__traceback__
        while tb is not None:
            code_file = tb.tb_frame.f_code.co_filename
            if Path(code_file).is_relative_to(templates_dir):
                filename, line = code_file, tb.tb_lineno
            tb = tb.tb_next
    if not filename:
        return str(templates_dir)
    return f"{filename}:{line}" if line else filename


def _context(config: Config, draft: Draft, items: tuple[FeedItem, ...]) -> dict:
    language = draft.language
    _ = gettext_for(language)
    intro = draft.sections[0] if draft.sections and not draft.sections[0].title else None
    sections = [s for s in draft.sections if s is not intro]
    return {
        "newsletter": config,
        "issue": draft.issue,
        "issue_label": issue_label(draft.issue, language),
        "subject": draft.subject,
        "preheader": draft.preheader,
        "language": language,
        "direction": direction(language),
        "intro_html": Markup(intro.html) if intro else "",
        "sections": [{"title": s.title, "html": Markup(s.html)} for s in sections],
        "feed_sections": group_items(items),
        "view_online_url": view_online_url(config, draft.issue, language),
        "also_in": _also_in(config, draft.issue, language),
        "recipient": Placeholders(),
        # TRANSLATORS: stands in for the name in "Dear %(name)s," when a subscriber has none.
        "fallback_name": _("reader"),
        "reason": _reason(config, language, _),
        "organisation": config.text_in("organisation", language),
        "format_date": lambda moment: _format_day(moment, language),
        # An event's date is written in its feed title, in English: shown in the edition's.
        "event_title": split_event_title,
        "event_label": lambda parts: parts.label(language),
        "event_line": lambda title: event_title_line(title, language),
    }


# The order the publisher lists its six languages in (alphabetical by their English names).
_LANGUAGE_ORDER = ("ar", "zh", "en", "fr", "ru", "es")
_STATUS_RE = re.compile(r"^status:\s*['\"]?(\w+)", re.MULTILINE)


def _also_in(config: Config, issue: str, language: str) -> list[dict[str, str]]:
    """The issue's other ready editions, each by its own name and with its web page: "Also
    in: العربية · Français". A draft edition is not listed (its page would not exist)."""
    found = {config.default_language: config.issues_dir / f"{issue}.md"}
    for path in config.issues_dir.glob(f"{issue}.*.md"):
        if path.name.count(".") == 2:
            found[path.name.split(".")[1]] = path
    editions = []
    for lang, path in found.items():
        try:
            front = path.read_text(encoding="utf-8-sig").split("\n---", 2)[:2]
        except (OSError, UnicodeDecodeError):
            continue
        status = _STATUS_RE.search("\n".join(front))
        if lang != language and status and status.group(1) == "ready":
            editions.append({"lang": lang, "dir": direction(lang),
                             "name": LANGUAGES.get(lang, lang),
                             "url": view_online_url(config, issue, lang)})
    rank = {lang: i for i, lang in enumerate(_LANGUAGE_ORDER)}
    return sorted(editions, key=lambda e: (rank.get(e["lang"], 99), e["lang"]))


def _reason(config: Config, language: str, _) -> str:  # noqa: ANN001
    """Why the reader gets this: [translations.LANG] reason, else the configured reason in
    the default language, else the catalog's generic sentence."""
    if language == config.default_language or config.text_in("reason", language) != \
            config.reason:
        return config.text_in("reason", language)
    return _("You receive this email because you subscribed to %(newsletter)s.") % {
        "newsletter": config.name}


def group_items(items: tuple[FeedItem, ...]) -> list[FeedSection]:
    """Items grouped by section, sections in order of first appearance."""
    order: dict[str, list[FeedItem]] = {}
    kinds: dict[str, str] = {}
    for item in items:
        order.setdefault(item.section, []).append(item)
        kinds.setdefault(item.section, item.kind)
    return [FeedSection(title, kinds[title], tuple(group)) for title, group in order.items()]


# CLDR skeletons, not hand-made patterns: each locale orders and inflects the parts itself
# (ru "январь 2027 г." in the nominative, zh "2027年1月", es "enero de 2027").
MONTH_SKELETON = "yMMMM"
DAY_SKELETON = "yMMMd"


def issue_label(issue: str, language: str) -> str:
    """The issue's month as the language writes a month on its own: 'January 2027'."""
    month = date(int(issue[:4]), int(issue[5:7]), 1)
    return format_skeleton(MONTH_SKELETON, month, tzinfo=UTC, locale=babel_locale(language))


def _format_day(moment: datetime | None, language: str) -> str:
    # tzinfo=UTC: the day the feed named (items are in UTC), not the build machine's day
    return format_skeleton(DAY_SKELETON, moment, tzinfo=UTC,
                           locale=babel_locale(language)) if moment else ""


def _tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row: the text part is read as is."""
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
