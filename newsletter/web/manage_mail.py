"""The data-link mail: a reader asked, from their preferences page, for a link to download or
delete their data; it goes to their own address only, built and signed like the confirmation."""

from __future__ import annotations

from datetime import datetime

from newsletter.audience.tokens import MANAGE_SECONDS, make_manage_token
from newsletter.config import Config
from newsletter.deliver.dkim import DkimSigner
from newsletter.i18n import LANGUAGES, gettext_for
from newsletter.web.mail import ServiceMail, service_mail

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
    _ = gettext_for(language)
    preheader = _("The link works for %(hours)s hours.") % {"hours": HOURS}
    return service_mail(config, ServiceMail("manage", "data-link mail", email, language,
                                            manage_subject(config, language), preheader),
                        {"manage_url": link, "hours": HOURS}, unsubscribe_url, now,
                        message_id, signer)
