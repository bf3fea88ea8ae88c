"""CSS inlining with premailer, once per edition (the only module that imports premailer)."""

from __future__ import annotations

import logging

import premailer


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes; keep @media rules in a <style> for phones.

    strip_important=False: the phone rules must beat the inlined desktop widths, and only
    !important lets a <style> rule win over a style attribute.
    """
    return premailer.Premailer(
        html,
        allow_network=False,  # never fetch external stylesheets: builds must be offline and safe
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        cache_css_parsing=False,
    ).transform(pretty_print=False)
