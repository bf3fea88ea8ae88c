"""The archive on `newsletter serve`: its index pages and Atom feeds, each edition's page
(the same pages `newsletter archive` writes, no personal data), and /healthz."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from newsletter.i18n import LANGUAGES
from newsletter.store.health import ping
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
        from newsletter.web.archive import served_file

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
        from newsletter.web.archive import edition_page_for

        page = edition_page_for(config, site.db(), issue, lang or config.default_language)
        if page is None:
            abort(404)
        return Response(page, mimetype="text/html")
