"""The double opt-in confirmation mail, built and signed by the same code as every issue."""

from __future__ import annotations

from datetime import datetime
from email.utils import make_msgid

import jinja2

from newsletter.config import Config
from newsletter.dkim import DkimSigner
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, direction, gettext_for
from newsletter.inline import break_lines, inline_css
from newsletter.message import Personal, build_message
from newsletter.render import Edition, make_environment
from newsletter.send import envelope_for
from newsletter.web_optin import CONFIRM_DAYS


def confirmation_subject(config: Config, language: str) -> str:
    _ = gettext_for(language)  # spelled _("..."): `make messages` extracts only that form
    return _("Please confirm your subscription to %(newsletter)s") % {"newsletter": config.name}


def build_confirmation(config: Config, email: str, language: str, confirm_url: str,
                       unsubscribe_url: str, now: datetime, message_id: str = "",
                       signer: DkimSigner | None = None) -> bytes:
    """HTML and text parts in the reader's language, DKIM-signed when [dkim] is set.

    The name typed into the form is never in it (nor in To:): a stranger could write any
    text there ("Win a prize! Visit ...") and have us deliver it to someone else's inbox.
    """
    language = language if language in LANGUAGES else config.default_language
    env = make_environment(config.templates_dir, language)
    subject = confirmation_subject(config, language)
    _ = gettext_for(language)
    context = {
        "newsletter": config, "email": email, "confirm_url": confirm_url,
        "days": CONFIRM_DAYS, "subject": subject, "language": language,
        "direction": direction(language),
        "preheader": _("Confirm within %(days)s days to start receiving it.")
        % {"days": CONFIRM_DAYS},
        "organisation": config.text_in("organisation", language),
    }
    try:
        html = env.get_template("confirm.html.j2").render(context)
        text = env.get_template("confirm.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise InputError(f"confirmation mail template: {exc.message}",
                         where=str(config.templates_dir)) from exc
    edition = Edition(issue="confirm", language=language, subject=subject,
                      preheader=context["preheader"], html=break_lines(inline_css(html)),
                      text=text, fallback_name="")
    who = Personal(email, "", unsubscribe_url,
                   message_id or make_msgid(domain=config.sender_domain))
    data = build_message(edition, envelope_for(config), who, now)
    return signer.sign(data) if signer is not None else data
