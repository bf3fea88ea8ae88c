"""The reader's own data on the web, behind a link mailed to the reader on request.

The unsubscribe token is in every issue's List-Unsubscribe header and footer, so whoever
holds a forwarded issue holds it: enough to unsubscribe or edit a name, not to read or erase
the reader's data. The preferences page therefore only asks for a link; the mail (kind
'manage', one an hour per address) goes to the reader's own address and carries a token of
its own purpose, valid 24 hours, that opens /manage/<token>: download (JSON) and delete.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from newsletter.audience.forget import export_json, forget_reader, reader_export
from newsletter.audience.tokens import make_token, verification_secrets, verify_manage_token
from newsletter.i18n import gettext_for
from newsletter.model import Subscriber
from newsletter.store import subscribers as store_subscribers
from newsletter.store.manage import queue_manage_mail
from newsletter.web.manage_mail import HOURS
from newsletter.web.optin_service import reader_of
from newsletter.web.site import Site


def manage_pages(site: Site) -> Blueprint:
    bp = Blueprint("manage", __name__)
    _add_link_routes(bp, site)
    _add_data_routes(bp, site)
    return bp


def _ask_for_link(site: Site, token: str) -> str | tuple[str, int]:
    """Queue the data-link mail to the token's own address (at most one an hour). The
    answer is the same whether or not the address is on the list, or a link was already
    sent this hour: nothing to learn from it."""
    now = site.clock()
    email, sub = reader_of(site.db(), site.config, token, now)
    if email is None:
        return site.pages.invalid_link(site.language())
    lang = site.language(sub.language if sub else "")
    if sub is not None and queue_manage_mail(site.db(), sub.email, sub.language or lang, now):
        site.on_queued()
    _ = gettext_for(lang)
    return site.pages.message(lang, _("Check your inbox"), _(
        "If this address is on our list, we have sent it a link to download or delete "
        "its data. The link works for %(hours)s hours; we send at most one an hour.")
        % {"hours": HOURS}, notice=True, here=f"{site.prefix}/preferences/{token}")


def _add_link_routes(bp: Blueprint, site: Site) -> None:
    """Behind the unsubscribe token: only a request for the link (old pages' routes too)."""

    @bp.post("/preferences/<token>/data-link")
    def data_link(token: str) -> str | tuple[str, int]:
        return _ask_for_link(site, token)

    @bp.post("/preferences/<token>/data")
    def old_download(token: str) -> str | tuple[str, int]:
        return _ask_for_link(site, token)  # an old page's button: the link, never the data

    @bp.route("/forget/<token>", methods=["GET", "POST"])
    def old_forget(token: str) -> str | tuple[str, int]:
        if request.method == "POST":
            return _ask_for_link(site, token)
        email, sub = reader_of(site.db(), site.config, token, site.clock())
        if email is None:
            return site.pages.invalid_link(site.language())
        lang = site.language(sub.language if sub else "")
        _ = gettext_for(lang)
        return site.pages.render(lang, "web/data_link.html.j2", _("Your data"),
                                 action=f"{site.prefix}/preferences/{token}/data-link")


def _reader(site: Site, token: str) -> Subscriber | None:
    """The subscriber a mailed data link names, while it is valid."""
    now = site.clock()
    email = verify_manage_token(verification_secrets(now), site.config.list_id, token, now)
    return store_subscribers.get_subscriber(site.db(), email) if email else None


def _add_data_routes(bp: Blueprint, site: Site) -> None:
    """Behind the mailed link's own token: the reader's data, to download or delete."""
    config, prefix, pages = site.config, site.prefix, site.pages

    @bp.get("/manage/<token>")
    def manage(token: str) -> str | tuple[str, int]:
        sub = _reader(site, token)
        if sub is None:
            return pages.invalid_link(site.language())
        lang = site.language(sub.language)
        _ = gettext_for(lang)
        return pages.render(lang, "web/manage.html.j2", _("Your data"), email=sub.email,
                            action=f"{prefix}/manage/{token}", hours=HOURS)

    @bp.post("/manage/<token>/data")
    def download(token: str) -> Response | tuple[str, int]:
        sub = _reader(site, token)
        data = reader_export(config, site.db(), sub.email, site.clock()) if sub else None
        if data is None:
            return pages.invalid_link(site.language())
        return Response(export_json(data), mimetype="application/json", headers={
            "Content-Disposition": 'attachment; filename="newsletter-data.json"'})

    @bp.route("/manage/<token>/delete", methods=["GET", "POST"])
    def delete(token: str) -> str | tuple[str, int]:
        sub = _reader(site, token)
        if sub is None:
            return pages.invalid_link(site.language())
        lang = site.language(sub.language)
        _ = gettext_for(lang)
        if request.method != "POST" or request.form.get("confirm") != "yes":
            preferences = make_token(verification_secrets(site.clock())[0], config.list_id,
                                     sub.email)
            return pages.render(lang, "web/forget.html.j2", _("Delete your data"),
                                email=sub.email, action=f"{prefix}/manage/{token}/delete",
                                preferences=f"{prefix}/preferences/{preferences}")
        forget_reader(config, site.db(), sub.email, site.clock())
        return pages.message(lang, _("Your data is deleted"), _(
            "We have erased your address, name and history from %(newsletter)s. You will "
            "receive nothing more from us.") % {"newsletter": config.name}, notice=True)
