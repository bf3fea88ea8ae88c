"""The web pages of `newsletter serve`, with the newsletter's look, in the reader's language."""

from __future__ import annotations

import jinja2
from flask import request

from newsletter.config import Config
from newsletter.i18n import LANGUAGES, direction, gettext_for, translations
from newsletter.web.optin import CONFIRM_DAYS


class Pages:
    """One Jinja environment per language; every page extends web/base.html.j2."""

    def __init__(self, config: Config, prefix: str) -> None:
        self.config, self.prefix = config, prefix
        self.envs: dict[str, jinja2.Environment] = {}

    def _env(self, lang: str) -> jinja2.Environment:
        if lang not in self.envs:
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.config.templates_dir),
                                     autoescape=True, undefined=jinja2.StrictUndefined,
                                     extensions=["jinja2.ext.i18n"])
            # added by the jinja2.ext.i18n extension at runtime, unknown to the type stubs
            env.install_gettext_translations(  # type: ignore[attr-defined]
                translations(lang), newstyle=True)
            self.envs[lang] = env
        return self.envs[lang]

    def render(self, lang: str, template: str, title: str, **context: object) -> str:
        context.setdefault("here", request.path)  # where the language links lead
        return self._env(lang).get_template(template).render(
            newsletter=self.config, prefix=self.prefix, title=title, language=lang,
            direction=direction(lang), languages=LANGUAGES.items(),
            organisation=self.config.text_in("organisation", lang), **context)

    def message(self, lang: str, title: str, text: str, *, notice: bool = False,
                link: str = "", link_text: str = "", **context: object) -> str:
        return self.render(lang, "web/message.html.j2", title, text=text, notice=notice,
                           link=link, link_text=link_text, **context)

    def invalid_link(self, lang: str) -> tuple[str, int]:
        """One answer for every bad token: tampered, foreign, truncated or garbage."""
        _ = gettext_for(lang)
        return self.message(lang, _("This link is not valid"),
                            _("Please use the link from your most recent email, or write to "
                              "us."), link=f"{self.prefix}/subscribe?lang={lang}",
                            link_text=_("Subscribe"), here=f"{self.prefix}/subscribe"), 400

    def expired_link(self, lang: str) -> tuple[str, int]:
        _ = gettext_for(lang)
        return self.message(lang, _("This link has expired or is not valid"),
                            _("Subscribe again to get a new confirmation email."),
                            link=f"{self.prefix}/subscribe?lang={lang}",
                            link_text=_("Subscribe")), 400

    def subscribe_form(self, lang: str, **form: str) -> str:
        # spelled _("..."): `make messages` extracts only that form, not gettext_for(x)("...")
        _ = gettext_for(lang)
        title = _("Subscribe to %(newsletter)s") % {"newsletter": self.config.name}
        return self.render(lang, "web/subscribe.html.j2", title,
                           action=f"{self.prefix}/subscribe?lang={lang}", **form)

    def check_inbox(self, lang: str, email: str) -> str:
        """The answer to every accepted form, whatever happened behind it."""
        _ = gettext_for(lang)
        return self.message(lang, _("Check your inbox"), _(
            "If %(email)s can subscribe, a confirmation email is on its way. Open the link "
            "in it within %(days)d days to confirm.") % {"email": email, "days": CONFIRM_DAYS},
            notice=True)

    def confirm_form(self, lang: str, email: str, name: str, chosen: str, token: str) -> str:
        _ = gettext_for(lang)
        return self.render(lang, "web/confirm.html.j2", _("Confirm your subscription"), email=email,
                           name=name, chosen_language=LANGUAGES.get(chosen, chosen),
                           action=f"{self.prefix}/confirm/{token}")

    def unsubscribe_form(self, lang: str, email: str, token: str) -> str:
        _ = gettext_for(lang)
        return self.render(lang, "web/unsubscribe.html.j2", _("Unsubscribe"),
                           email=email, action=f"{self.prefix}/unsubscribe/{token}",
                           preferences=f"{self.prefix}/preferences/{token}")
