"""Languages: gettext catalogs (Babel .po files in newsletter/locale), names and text direction."""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# The publisher's six languages; a language without a catalog still works, in English.
LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية",
             "zh": "中文", "ru": "Русский"}
RTL_LANGUAGES = {"ar", "fa", "he", "ur"}
_CLDR_TAGS = {"en": "en_001"}


def babel_locale(language: str) -> Locale:
    """Babel's locale for a language tag (pt-br -> pt_BR); the primary subtag, else English,
    when Babel has no data for it: a date in English beats a crash. A bare "en" is CLDR's
    international English (en_001: "12 November 2026"), the publisher's own; CLDR's "en" is
    US English ("November 12, 2026"), which "en-us" still gets."""
    for tag in (language, language.split("-")[0], "en"):
        try:
            return Locale.parse(_CLDR_TAGS.get(tag.lower(), tag).replace("-", "_"))
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return Locale("en")


def direction(language: str) -> str:
    return "rtl" if language.split("-")[0] in RTL_LANGUAGES else "ltr"


@functools.lru_cache(maxsize=32)
def translations(language: str) -> gettext.NullTranslations:
    """The catalog for a language, read from its .po file (the .po is the one source of truth:
    no compiled .mo to forget). Unknown languages and English get the msgids themselves."""
    po = LOCALE_DIR / language.split("-")[0] / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language.split("-")[0])
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def gettext_for(language: str):  # noqa: ANN201 - a (str) -> str function
    return translations(language).gettext


def catalog_languages() -> list[str]:
    return sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


@functools.lru_cache(maxsize=64)
def edition_note(reader_language: str, edition_language: str) -> str:
    """The line, in the reader's own language, for a reader of one of the newsletter's
    languages who gets another language's edition because theirs is not ready; else ""."""
    reader = (reader_language or "").lower().split("-")[0]
    if not reader or reader == edition_language.lower().split("-")[0] or reader not in LANGUAGES:
        return ""
    _ = gettext_for(reader)  # spelled _("..."): `make messages` extracts only that form
    return _("This issue is not yet available in your language. If it is translated this "
             "month, you will also receive your own edition.")
