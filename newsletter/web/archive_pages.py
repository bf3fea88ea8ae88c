"""The archive's pages: the frozen editions as the archive shows them (no personal data),
grouped by language, the index pages and each edition's page with its language links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError

from newsletter.compose.drafts import check_issue_id
from newsletter.compose.personalise import Recipient, personalise_html
from newsletter.compose.render import issue_label, view_online_url
from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, direction, gettext_for, translations
from newsletter.model import Edition
from newsletter.store.archive import frozen_editions
from newsletter.store.db import Db

_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$")  # as drafts.py accepts them
_HEAD_END = re.compile(r"</head\s*>", re.I)
_BODY_START = re.compile(r"<body\b[^>]*>", re.I)


@dataclass(frozen=True)
class Published:
    """A frozen edition as the archive shows it: no personal data, at its view-online URL."""

    edition: Edition
    frozen_at: datetime
    url: str
    html: str  # the edition's HTML with the generic greeting and the subscribe link

    @property
    def language(self) -> str:
        return self.edition.language


@dataclass(frozen=True)
class Group:
    """One language's issues, newest first: a section of the index, a page and a feed."""

    language: str
    name: str
    direction: str
    index_url: str
    feed_url: str
    editions: tuple[Published, ...]


def published_editions(db: Db, config: Config) -> list[Published]:
    """Every frozen edition (an issue whose send has begun): newest issue first, then the
    default language, then the others alphabetically."""
    found = []
    for frozen in frozen_editions(db):
        edition = frozen.edition
        check_issue_id(edition.issue)
        if not _LANGUAGE_RE.match(edition.language):  # it becomes a folder name
            raise InputError(f"edition {edition.issue}: bad language {edition.language!r}",
                             where=str(config.store_path))
        # No personal data: the generic greeting, and the footer link leads to the subscribe page.
        html = personalise_html(edition.html, Recipient("", f"{config.base_url}/subscribe"),
                                edition.fallback_name)
        found.append(Published(edition, frozen.frozen_at,
                               view_online_url(config, edition.issue, edition.language), html))
    found.sort(key=lambda p: _language_key(config, p.language))
    return sorted(found, key=lambda p: p.edition.issue, reverse=True)  # stable: keeps that


def language_groups(config: Config, published: list[Published]) -> list[Group]:
    base = config.base_url
    languages = sorted({p.language for p in published}, key=partial(_language_key, config))
    return [Group(lang, _autonym(lang), direction(lang), f"{base}/{lang}/",
                  f"{base}/{lang}/feed.xml", tuple(p for p in published if p.language == lang))
            for lang in languages]


def index_page(config: Config, env: jinja2.Environment, groups: list[Group],
               group: Group | None = None) -> str:
    """The whole archive's index (in the default language), or one language's (GROUP, in
    that language: ENV must carry its catalog)."""
    index = env.get_template("archive/index.html.j2")
    if group is None:
        language = config.default_language
        _ = gettext_for(language)
        return index.render(language=language, groups=groups, direction=direction(language),
                            title=_("Archive"), full=True,
                            organisation=config.text_in("organisation", language))
    _ = gettext_for(group.language)
    return index.render(language=group.language, direction=group.direction, groups=[group],
                        title=_("Archive: %(language)s") % {"language": group.name}, full=False,
                        organisation=config.text_in("organisation", group.language))


def environment(config: Config, language: str = "") -> jinja2.Environment:
    """The archive's templates with LANGUAGE's catalog (default: the newsletter's own)."""
    base = config.base_url
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(config.templates_dir),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.i18n"])
    # added by the jinja2.ext.i18n extension at runtime, unknown to the type stubs
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations(language or config.default_language), newstyle=True)
    env.filters.update(month=_month, autonym=_autonym)
    env.globals.update(newsletter=config, home=f"{base}/", subscribe=f"{base}/subscribe")
    return env


def edition_page(config: Config, macros: Any, pub: Published,
                 versions: list[Published]) -> str:
    """The edition's own HTML, with hreflang links in head and a language bar after <body>.
    MACROS: templates/archive/edition.html.j2 as a module."""
    default = next((v.url for v in versions if v.language == config.default_language), "")
    head = str(macros.head_links(versions, default))
    others = [v for v in versions if v is not pub]
    bar = "\n" + str(macros.bar(others, f"{config.base_url}/"))
    html = _HEAD_END.sub(lambda m: head + m.group(), pub.html, count=1)
    return _BODY_START.sub(lambda m: m.group() + bar, html, count=1)


def _language_key(config: Config, language: str) -> tuple[bool, str]:
    """The default language first, then the others alphabetically."""
    return language != config.default_language, language


def _autonym(language: str) -> str:
    """The language's name in itself: the publisher's list first, then Babel's."""
    try:
        name = LANGUAGES.get(language) or Locale.parse(language.replace("-", "_")).display_name
    except (UnknownLocaleError, ValueError):
        return language
    return (name or language)[:1].upper() + (name or language)[1:]


def _month(issue: str, language: str) -> str:
    try:
        return issue_label(issue, language)  # the masthead's own month: one pattern for both
    except ValueError:
        return issue
