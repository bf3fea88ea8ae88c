"""The double opt-in confirmation mail, built and signed by the same code as every issue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid

import jinja2

from newsletter.compose.inline import break_lines, inline_css
from newsletter.compose.message import Personal, build_message
from newsletter.compose.render import make_environment
from newsletter.config import Config
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.send import envelope_for
from newsletter.errors import InputError
from newsletter.i18n import LANGUAGES, direction, gettext_for
from newsletter.model import Edition
from newsletter.web.optin import CONFIRM_DAYS


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
    _ = gettext_for(language)
    preheader = _("Confirm within %(days)s days to start receiving it.") % {"days": CONFIRM_DAYS}
    return service_mail(config, ServiceMail("confirm", "confirmation mail", email, language,
                                            confirmation_subject(config, language), preheader),
                        {"confirm_url": confirm_url, "days": CONFIRM_DAYS},
                        unsubscribe_url, now, message_id, signer)


@dataclass(frozen=True)
class ServiceMail:
    """A mail the web app sends one reader on their own request (not an issue)."""

    kind: str  # also the templates' name: KIND.html.j2, KIND.txt.j2
    what: str  # for an error message: "confirmation mail"
    email: str
    language: str  # one of the six
    subject: str
    preheader: str


def service_mail(config: Config, mail: ServiceMail, extra: dict, unsubscribe_url: str,
                 now: datetime, message_id: str = "", signer: DkimSigner | None = None) -> bytes:
    """Render KIND.html.j2 and KIND.txt.j2 in the reader's language and build the message
    with the code every issue uses, DKIM-signed when [dkim] is set."""
    env = make_environment(config.templates_dir, mail.language)
    context = {"newsletter": config, "email": mail.email, "subject": mail.subject,
               "language": mail.language, "direction": direction(mail.language),
               "preheader": mail.preheader,
               "organisation": config.text_in("organisation", mail.language), **extra}
    try:
        html = env.get_template(f"{mail.kind}.html.j2").render(context)
        text = env.get_template(f"{mail.kind}.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise InputError(f"{mail.what} template: {exc.message}",
                         where=str(config.templates_dir)) from exc
    edition = Edition(issue=mail.kind, language=mail.language, subject=mail.subject,
                      preheader=mail.preheader, html=break_lines(inline_css(html)),
                      text=text, fallback_name="")
    who = Personal(mail.email, "", unsubscribe_url,
                   message_id or make_msgid(domain=config.sender_domain))
    data = build_message(edition, envelope_for(config), who, now)
    return signer.sign(data) if signer is not None else data
