"""Is there an installed font for an edition's script? Asked of fontconfig before `build`
takes screenshots.

Chromium draws a character no installed font covers as an empty box, and says nothing: a
Chinese build on a machine without a CJK font gave screenshots full of boxes that looked
like a rendering bug. fontconfig knows which fonts cover which language (`fc-list
:lang=zh`), so `build` can say so before anyone looks at the pictures. Readers' own
machines are not the question: this is only about the screenshots taken here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError

# What to install on Debian/Ubuntu when a language has no font (.ci/run installs these).
_PACKAGE = {"zh": "fonts-noto-cjk", "ja": "fonts-noto-cjk", "ko": "fonts-noto-cjk"}
_DEFAULT_PACKAGE = "fonts-noto-core"
FC_LIST_TIMEOUT = 15.0  # seconds: a cold font cache is rebuilt on the first call


@dataclass(frozen=True)
class FontCoverage:
    """The installed font families that cover LANGUAGE, as fontconfig reports them; None
    when fontconfig could not be asked (no fc-list, or it failed)."""

    language: str
    families: tuple[str, ...] | None


def coverage(language: str) -> FontCoverage:
    """fc-list :lang=LANGUAGE family (the primary subtag: zh-tw asks for zh)."""
    primary = language.lower().split("-")[0]
    fc_list = shutil.which("fc-list")
    if fc_list is None or not primary.isalpha():
        return FontCoverage(primary, None)
    try:
        done = subprocess.run([fc_list, f":lang={primary}", "family"], capture_output=True,
                              text=True, timeout=FC_LIST_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return FontCoverage(primary, None)
    if done.returncode != 0:
        return FontCoverage(primary, None)
    families = sorted({name.strip() for line in done.stdout.splitlines()
                       for name in line.split(",")[:1] if name.strip()})
    return FontCoverage(primary, tuple(families))


def language_name(language: str) -> str:
    """'Chinese (zh)': the name an operator reads in a warning, in English."""
    try:
        name = Locale.parse(language.replace("-", "_")).get_display_name("en")
    except (ValueError, UnknownLocaleError):
        name = None
    return f"{name} ({language})" if name else language


def font_warning(language: str) -> str:
    """The line `build` warns with before screenshots of LANGUAGE's edition, or "". When
    fc-list is missing it says so, once per run (one build may check several editions)."""
    found = coverage(language)
    if found.families is None:
        return _cannot_check_once()
    if found.families:
        return ""
    package = _PACKAGE.get(found.language, _DEFAULT_PACKAGE)
    return (f"no installed font covers {language_name(found.language)}: screenshots will "
            f"show empty boxes; install {package}")


_SAID: set[str] = set()  # notes already given in this process


def _cannot_check_once() -> str:
    if "no fc-list" in _SAID:
        return ""
    _SAID.add("no fc-list")
    return ("cannot check the fonts for the screenshots: fc-list (fontconfig) is not "
            "installed or failed; a script without an installed font shows as empty boxes")
