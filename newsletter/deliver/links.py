"""A reader's links in a sent message: the unsubscribe URL and the List-Unsubscribe mailto."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from newsletter.audience.return_address import unsubscribe_mailto
from newsletter.audience.tokens import make_token

if TYPE_CHECKING:
    from newsletter.config import Config


def reader_links(config: Config, secret: str) -> Callable[[str], tuple[str, str]]:
    """A reader's unsubscribe URL and List-Unsubscribe mailto from one token: both carry the
    same one (unsubscribe_url_maker and ReturnPaths.mailto each make it, an AES-SIV each)."""
    base, list_id = f"{config.base_url}/unsubscribe/", config.list_id
    # Percent-encoding goes character by character: the mailto is its prefix for no token and
    # the token quoted alone, which urllib does without its per-character loop (a token's
    # characters are all unreserved; "unsubscribe TOKEN" has a space).
    prefix = unsubscribe_mailto(config, "")

    def links(email: str) -> tuple[str, str]:
        token = make_token(secret, list_id, email)
        return base + token, prefix + quote(token, safe="")

    return links
