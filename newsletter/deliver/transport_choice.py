"""Which transport a run delivers through: `[delivery] transport` in newsletter.toml decides,
and the environment only supplies the SMTP address and password.

Why: a cron job whose environment lost NEWSLETTER_SMTP_URL used to "send" into the Maildir,
mark every reader sent, and the issue was gone. With the transport named in the file, a
missing URL is an error before anything is claimed, never a silent change of destination.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config
from newsletter.deliver.transport import SmtpSettings, parse_smtp_url
from newsletter.errors import ConfigError


@dataclass(frozen=True)
class TransportChoice:
    kind: str  # "smtp" or "maildir"
    settings: SmtpSettings | None  # set when kind is "smtp"
    outbox: Path
    configured: bool  # False: newsletter.toml names no transport (the old rule chose)
    label: str  # what the ledger records per row: no user name, no password


def smtp_label(settings: SmtpSettings) -> str:
    """'smtp+starttls://relay.example.org:587': where it went, without the login."""
    return f"{settings.scheme}://{settings.host}:{settings.port}"


def maildir_label(config: Config, outbox: Path) -> str:
    """'maildir:outbox' (relative to the project) or 'maildir:/abs/path' elsewhere."""
    try:
        shown = outbox.relative_to(config.root)
    except ValueError:
        shown = outbox
    return f"maildir:{shown}"


def choose_transport(config: Config, environ: Mapping[str, str] | None = None
                     ) -> TransportChoice:
    """The transport for this run, or ConfigError (exit 2) naming newsletter.toml.

    transport = "smtp": NEWSLETTER_SMTP_URL is required. transport = "maildir": the URL must
    not be set (an operator who set it expects real mail; the Maildir would take the issue).
    Not set: the old rule (URL set -> SMTP, else the Maildir), which `send` warns about.
    """
    env = os.environ if environ is None else environ
    url = env.get("NEWSLETTER_SMTP_URL", "")
    outbox = config.root / "outbox"
    where = str(config.source)
    if config.transport == "smtp" and not url:
        raise ConfigError('[delivery] transport = "smtp" but NEWSLETTER_SMTP_URL is not set '
                          "in the environment; nothing sent (set it, e.g. in the cron job)",
                          where=where)
    if config.transport == "maildir" and url:
        raise ConfigError('[delivery] transport = "maildir" but NEWSLETTER_SMTP_URL is set; '
                          'nothing sent (set transport = "smtp" to send through it, or unset '
                          "the URL to write the Maildir)", where=where)
    if url:
        settings = parse_smtp_url(url, env.get("NEWSLETTER_SMTP_PASSWORD", ""))
        return TransportChoice("smtp", settings, outbox, bool(config.transport),
                               smtp_label(settings))
    return TransportChoice("maildir", None, outbox, bool(config.transport),
                           maildir_label(config, outbox))


def implicit_warning(choice: TransportChoice) -> str:
    """For `send` when newsletter.toml names no transport: say what was chosen and why."""
    if choice.configured:
        return ""
    if choice.kind == "smtp":
        return ("newsletter.toml names no [delivery] transport: sending through "
                f"{choice.label} because NEWSLETTER_SMTP_URL is set "
                '(set transport = "smtp" to make a missing URL an error)')
    return ("newsletter.toml names no [delivery] transport: writing the Maildir "
            f"{choice.outbox} because NEWSLETTER_SMTP_URL is not set; readers are marked "
            'sent (set transport = "maildir" or "smtp")')
