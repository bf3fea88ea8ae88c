"""The data-link mail: a reader asked, from their preferences page, for a link to download or
delete their data; it goes to their own address only, built and signed like the confirmation."""

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
from newsletter.tokens import MANAGE_SECONDS, make_manage_token

HOURS = MANAGE_SECONDS // 3600


def manage_subject(config: Config, language: str) -> str:
    _ = gettext_for(language)  # spelled _("..."): `make messages` extracts only that form
    return _("Your link to download or delete your data at %(newsletter)s") % {
        "newsletter": config.name}


def manage_link(config: Config, secret: str, email: str, now: datetime) -> str:
    return f"{config.base_url}/manage/{make_manage_token(secret, config.list_id, email, now)}"


def build_manage_mail(config: Config, email: str, language: str, link: str,
                      unsubscribe_url: str, now: datetime, message_id: str = "",
                      signer: DkimSigner | None = None) -> bytes:
    """HTML and text parts in the reader's language, DKIM-signed when [dkim] is set."""
    language = language if language in LANGUAGES else config.default_language
    env = make_environment(config.templates_dir, language)
    subject = manage_subject(config, language)
    _ = gettext_for(language)
    context = {
        "newsletter": config, "email": email, "manage_url": link, "hours": HOURS,
        "subject": subject, "language": language, "direction": direction(language),
        "preheader": _("The link works for %(hours)s hours.") % {"hours": HOURS},
        "organisation": config.text_in("organisation", language),
    }
    try:
        html = env.get_template("manage.html.j2").render(context)
        text = env.get_template("manage.txt.j2").render(context)
    except jinja2.TemplateError as exc:
        raise InputError(f"data-link mail template: {exc.message}",
                         where=str(config.templates_dir)) from exc
    edition = Edition(issue="manage", language=language, subject=subject,
                      preheader=context["preheader"], html=break_lines(inline_css(html)),
                      text=text, fallback_name="")
    who = Personal(email, "", unsubscribe_url,
                   message_id or make_msgid(domain=config.sender_domain))
    data = build_message(edition, envelope_for(config), who, now)
    return signer.sign(data) if signer is not None else data
