"""The reader's language on `newsletter serve`'s pages, and the pages that answer errors in it.

Which language a page speaks, first match wins:
1. `?lang=` when it names one of the six: the language links at the foot of every page set
   it, so a click there always works, on a token page too;
2. the subscriber's own language, when the request names a subscriber (a token) or a
   pending request (its confirm link);
3. the browser's Accept-Language, matched to the six (fr-CH -> fr, zh-Hans-CN -> zh);
4. the newsletter's default language.
Nothing else from the request is trusted: an unknown tag is ignored, never echoed.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.wrappers import Response as WerkzeugResponse

from newsletter.i18n import LANGUAGES, gettext_for
from newsletter.store.db import StoreError

# Blueprints whose clients are machines (provider webhooks): their errors stay plain.
MACHINE_BLUEPRINTS = ("webhooks",)


def reader_language(query: str, known: str, accept: LanguageAccept, default: str) -> str:
    """The page's language (see the module's docstring for the order)."""
    for choice in (query, known):
        if choice in LANGUAGES:
            return choice
    if known.split("-")[0] in LANGUAGES:  # a subscriber imported as "fr-ca"
        return known.split("-")[0]
    return browser_language(accept) or default


def browser_language(accept: LanguageAccept) -> str:
    """The first of the browser's languages, by its own preference, whose primary subtag is
    one of the six. Werkzeug's best_match prefers any exact match to a regional one: for
    "ar-EG, en;q=0.3" it answers en; an Egyptian reader wants ar."""
    for tag, quality in accept:  # highest quality first, the header's order among equals
        primary = tag.lower().replace("_", "-").split("-")[0]
        if quality > 0 and primary in LANGUAGES:
            return primary
    return ""


def form_problem(language: str, field: str) -> str:
    """What the reader is told about a field the form refused, in their language. The
    validator's own message is English and quotes what was typed: it is not shown."""
    _ = gettext_for(language)
    if field == "email":
        return _("Please check the email address: it should look like name@example.org.")
    if field == "name":
        return _("Please check the name: it can be at most 200 characters long, on one line, "
                 "without special characters.")
    if field == "language":
        return _("Please choose a language from the list.")
    return _("Please check the form")


def _error_text(language: str, code: int) -> tuple[str, str]:
    """(title, sentence) of an error page."""
    _ = gettext_for(language)
    if code == 404:
        return _("Page not found"), _(
            "There is no page at this address. It may have moved, or the link may be "
            "incomplete.")
    if code == 405:
        return _("This page cannot do that"), _(
            "Please go back and use the page's own buttons and links.")
    if code == 413:
        return _("The form is too large"), _(
            "Please shorten what you typed and send the form again.")
    return _("Something went wrong"), _(
        "We could not answer this request just now. Please try again later.")


def register_error_pages(app: Flask, render_message: Callable[..., str],
                         default_language: str, prefix: str) -> None:
    """Reader pages for 404, 405, 413, 500 and 503 (the database failed), in the reader's
    language (?lang=, else Accept-Language), with a link to the subscribe page.
    render_message is web_pages.Pages.message."""

    def page(exc: HTTPException) -> Response | HTTPException:
        if request.blueprint in MACHINE_BLUEPRINTS:
            return exc
        code = exc.code or 500
        lang = reader_language(request.args.get("lang", ""), "", request.accept_languages,
                               default_language)
        title, text = _error_text(lang, code)
        _ = gettext_for(lang)
        body = render_message(lang, title, text, link=f"{prefix}/subscribe?lang={lang}",
                              link_text=_("Subscribe to the newsletter"))
        response = Response(body, status=code, mimetype="text/html")
        if code == 405 and exc.get_headers():  # keep Allow
            response.headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
        return response

    def unavailable(exc: StoreError) -> WerkzeugResponse:
        """The database failed (down, restarting, full): one log line, not a traceback per
        page, and 503 with Retry-After, which a provider's webhook retries (RFC 9110 15.6.4)."""
        where = repr(request.path[:200])  # the visitor's path: quoted, never a raw line
        app.logger.warning("%s %s: %s (answered 503)", request.method, where, exc)
        answer = page(ServiceUnavailable())
        response = answer.get_response() if isinstance(answer, HTTPException) else answer
        response.headers["Retry-After"] = "30"
        return response

    for code in (404, 405, 413, 500, 503):
        app.register_error_handler(code, page)
    app.register_error_handler(StoreError, unavailable)
