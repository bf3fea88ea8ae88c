"""The archive on `newsletter serve`: its index pages and Atom feeds, each edition's page
(the same pages `newsletter archive` writes, no personal data), and /healthz."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from newsletter.config import Config
from newsletter.i18n import LANGUAGES
from newsletter.store.db import Db
from newsletter.store.health import ping
from newsletter.web.archive_feed import ATOM_TYPE, atom_feed
from newsletter.web.archive_pages import (
    edition_page,
    environment,
    index_page,
    language_groups,
    published_editions,
)
from newsletter.web.site import Site


def add_archive_routes(bp: Blueprint, site: Site) -> None:
    config, prefix = site.config, site.prefix
    languages = ",".join(LANGUAGES)

    @bp.get("/")
    @bp.get("/feed.xml")
    @bp.get(f"/<any({languages}):lang>/")
    @bp.get(f"/<any({languages}):lang>/feed.xml")
    def archive(lang: str = "") -> Response:
        """The archive's index pages and Atom feeds, as `newsletter archive` writes them."""
        found = served_file(config, site.db(), request.path.removeprefix(prefix))
        if found is None:
            abort(404)
        return Response(found[1], mimetype=found[0])

    @bp.get("/healthz")
    def health() -> str:
        ping(site.db())
        return "ok"

    @bp.get("/issues/<issue>")
    @bp.get("/issues/<issue>/<lang>")
    def web_view(issue: str, lang: str = "") -> Response:
        """The same page as the static archive's (no personal data, links between languages)."""
        page = edition_page_for(config, site.db(), issue, lang or config.default_language)
        if page is None:
            abort(404)
        return Response(page, mimetype="text/html")


def served_file(config: Config, db: Db, path: str) -> tuple[str, bytes] | None:
    """What `newsletter serve` answers for an archive path (under base_url): the same pages
    and feeds `archive` writes. Returns (mimetype, body), or None if there is no such page."""
    published = published_editions(db, config)
    groups = {g.language: g for g in language_groups(config, published)}
    parts = [p for p in path.strip("/").split("/") if p]
    if parts in ([], ["index.html"]):
        return "text/html", index_page(config, environment(config), list(groups.values())).encode()
    if parts == ["feed.xml"] and config.default_language in groups:
        return ATOM_TYPE, atom_feed(config, groups[config.default_language],
                                    f"{config.base_url}/feed.xml")
    if len(parts) in (1, 2) and parts[0] in groups and parts[1:] in ([], ["index.html"]):
        html = index_page(config, environment(config, parts[0]), list(groups.values()),
                          groups[parts[0]])
        return "text/html", html.encode()
    if len(parts) == 2 and parts[0] in groups and parts[1] == "feed.xml":
        return ATOM_TYPE, atom_feed(config, groups[parts[0]])
    return None


def edition_page_for(config: Config, db: Db, issue: str,
                     language: str) -> str | None:
    """The archive page of one edition, as `newsletter serve` shows it; None if not sent."""
    published = published_editions(db, config)
    versions = [p for p in published if p.edition.issue == issue]
    pub = next((p for p in versions if p.language == language), None)
    if pub is None:
        return None
    macros = environment(config, language).get_template("archive/edition.html.j2").module
    return edition_page(config, macros, pub, versions)
