"""/unsubscribe/<token> (RFC 8058 one-click) and /preferences/<token>: the pages behind
the links in every issue (optin_service.py does the work)."""

from __future__ import annotations

from flask import Blueprint, request

from newsletter.i18n import LANGUAGES, gettext_for
from newsletter.web import optin_service as service
from newsletter.web.consent import unsubscribed_page
from newsletter.web.language import form_problem
from newsletter.web.optin import FormProblem
from newsletter.web.site import Site


def add_reader_routes(bp: Blueprint, site: Site) -> None:
    config, prefix, pages = site.config, site.prefix, site.pages

    @bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
    def unsubscribe(token: str) -> str | tuple[str, int]:
        now = site.clock()
        email, sub = service.reader_of(site.db(), config, token, now)
        lang = site.language(sub.language if sub else "")
        if email is None:
            return pages.invalid_link(lang)
        # RFC 8058 section 3.2: the one-click POST carries "List-Unsubscribe=One-Click". Any
        # other request (a scanner's GET or HEAD, a POST without that body) only shows the
        # button, which sends exactly that body.
        if request.method != "POST" or request.form.get("List-Unsubscribe") != "One-Click":
            return pages.unsubscribe_form(lang, email, token)
        changed = service.unsubscribe(site.db(), sub, now)
        return unsubscribed_page(pages, config, lang, email, now,  # and "why?" (optional)
                                 ask_why=changed)

    @bp.route("/preferences/<token>", methods=["GET", "POST"])
    def preferences(token: str) -> str | tuple[str, int]:
        _email, sub = service.reader_of(site.db(), config, token, site.clock())
        if sub is None:
            return pages.invalid_link(site.language())
        saved = request.method == "POST"
        if saved:
            try:
                sub = service.save_profile(site.db(), config.default_language, sub,
                                           request.form.get("name", ""),
                                           request.form.get("language", ""))
            except FormProblem as exc:
                lang = site.language(sub.language)
                _ = gettext_for(lang)
                return pages.message(lang, _("Please check the form"),
                                     form_problem(lang, exc.field)), 422
        lang = sub.language if saved and sub.language in LANGUAGES else site.language(sub.language)
        _ = gettext_for(lang)  # spelled _("..."): `make messages` extracts only that form
        return pages.render(lang, "web/preferences.html.j2", _("Your preferences"),
                            email=sub.email, name=sub.name, chosen_language=sub.language,
                            saved=saved, action=f"{prefix}/preferences/{token}",
                            unsubscribe=f"{prefix}/unsubscribe/{token}",
                            data_link=f"{prefix}/preferences/{token}/data-link")
