"""What receivers require of bulk mail that the config alone can tell (pure)."""

from __future__ import annotations

from newsletter.config import Config


def unsigned_bulk_warning(config: Config, over_smtp: bool) -> str | None:
    """Gmail and Yahoo (since February 2024) and Outlook.com (since May 2025) reject or junk
    bulk mail that is not DKIM-signed for the From domain; the Maildir needs no signature."""
    if not over_smtp or config.dkim_key_file is not None:
        return None
    return ("no [dkim] section in newsletter.toml: Gmail, Yahoo and Outlook reject or junk "
            "unsigned bulk mail; run `newsletter dkim keygen`, publish the TXT record it "
            "prints, and add the [dkim] lines it shows (README: DKIM)")
