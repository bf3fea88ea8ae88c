"""`newsletter archive`: the sent editions as a static site with Atom feeds, ready for
public/ (the pages are archive_pages.py's, the feeds archive_feed.py's)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from newsletter.config import Config
from newsletter.errors import InputError
from newsletter.web.archive_feed import atom_feed
from newsletter.web.archive_pages import (
    Group,
    Published,
    edition_page,
    environment,
    index_page,
    language_groups,
)

MARKER = ".newsletter-archive"  # only a folder holding this file is ever replaced


def build_archive(config: Config, published: list[Published], out: Path) -> list[Group]:
    """Write the whole site into a fresh folder beside OUT, then put it in OUT's place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700: the web server could not read it
        groups = write_site(config, published, staging)
        _swap(staging, out)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, jinja2.TemplateError):
            raise InputError(f"template error: {exc}",
                             where=str(config.templates_dir / "archive")) from exc
        raise
    return groups


def write_site(config: Config, published: list[Published], root: Path) -> list[Group]:
    """The index, an index and a feed per language, and a page per edition, under ROOT."""
    env = environment(config)
    groups = language_groups(config, published)
    _write(root / "index.html", index_page(config, env, groups))
    for group in groups:
        _write(root / group.language / "index.html",
               index_page(config, environment(config, group.language), groups, group))
        _write(root / group.language / "feed.xml", atom_feed(config, group))
        if group.language == config.default_language:
            _write(root / "feed.xml", atom_feed(config, group, f"{config.base_url}/feed.xml"))
    macros: dict[str, Any] = {}  # the bar's words are in each edition's own language
    for pub in published:
        versions = [p for p in published if p.edition.issue == pub.edition.issue]
        if pub.language not in macros:
            macros[pub.language] = environment(config, pub.language).get_template(
                "archive/edition.html.j2").module
        # At its view-online URL's path: public/ is served at base_url.
        _write(root / pub.url.removeprefix(config.base_url).strip("/") / "index.html",
               edition_page(config, macros[pub.language], pub, versions))
    (root / MARKER).write_text("written by `newsletter archive`; replaced on every run\n")
    return groups


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def _check_replaceable(out: Path) -> None:
    """Never delete a folder this command did not write (say --out pointed at the project)."""
    if out.exists() and not (out / MARKER).exists() and (
            not out.is_dir() or any(out.iterdir())):
        raise InputError(f"not written by `newsletter archive` (no {MARKER} file); "
                         "refusing to replace it: pick another --out or empty it", where=str(out))


def _swap(staging: Path, out: Path) -> None:
    """Two renames: OUT is missing for an instant, but never half written."""
    old = staging.with_name(staging.name + ".old")
    if out.exists():
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
