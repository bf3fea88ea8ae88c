"""/subscribe and /confirm/<token>: the double opt-in's two pages (optin_service.py does
the work). Only a POST changes anything; the answer to a form never tells whether the
address was already on the list."""

from __future__ import annotations

from flask import Blueprint, request

from newsletter.i18n import gettext_for
from newsletter.web import optin_service as service
from newsletter.web.language import form_problem
from newsletter.web.optin import FormProblem, client_key, parse_subscribe_form
from newsletter.web.site import Site


def add_optin_routes(bp: Blueprint, site: Site) -> None:
    config, pages = site.config, site.pages

    @bp.route("/subscribe", methods=["GET", "POST"])
    def subscribe() -> str | tuple[str, int]:
        lang = site.language()
        form = {"email": "", "name": "", "chosen_language": lang, "error": ""}
        if request.method != "POST":
            return pages.subscribe_form(lang, **form)
        form.update(email=request.form.get("email", "")[:320],
                    name=request.form.get("name", "")[:200],
                    chosen_language=request.form.get("language", lang)[:20])
        try:
            valid = parse_subscribe_form(form["email"], form["name"], form["chosen_language"],
                                         config.default_language)
        except FormProblem as exc:
            form["error"] = form_problem(lang, exc.field)
            return pages.subscribe_form(lang, **form), 422
        client = client_key(request.remote_addr or "", request.headers.get(
            "X-Forwarded-For", ""), config.web.trusted_proxies)
        blank = pages.subscribe_form(lang, email="", name="", chosen_language=lang, error="")
        service.subscribe(site.db(), config, valid, client, lang, blank, site.clock())
        site.on_queued()  # called whatever the outcome: the same work for every address
        return pages.check_inbox(lang, valid.email)

    @bp.route("/confirm/<token>", methods=["GET", "POST"])
    def confirm(token: str) -> str | tuple[str, int]:
        now = site.clock()
        found = service.pending_request(site.db(), config, token, now)
        lang = site.language(found[1].language if found else "")
        if found is None:
            return pages.expired_link(lang)
        public_id, req = found
        if request.method != "POST":
            return pages.confirm_form(lang, req.email, req.name, req.language, token)
        outcome = service.confirm(site.db(), config, public_id, req, now)
        if outcome == "expired":
            return pages.expired_link(lang)
        if outcome == "welcomed":
            site.on_queued()  # the welcome mail, with the latest issue
        _ = gettext_for(lang)
        return pages.message(lang, _("You are subscribed"), _(
            "Thank you: %(email)s will receive the next issue of %(newsletter)s.")
            % {"email": req.email, "newsletter": config.name}, notice=True)
