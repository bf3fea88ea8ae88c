"""CSS inlining with premailer, once per edition (the only module that imports premailer)."""

from __future__ import annotations

import logging
import re

import premailer


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes; keep @media rules in a <style> for phones.

    strip_important=False: the phone rules must beat the inlined desktop widths, and only
    !important lets a <style> rule win over a style attribute.
    """
    # premailer copies text-align into align=, but `start` (feed text aligned to its own
    # direction, style.css) has no align= value: HTML allows left, center, right, justify.
    return premailer.Premailer(
        html,
        allow_network=False,  # never fetch external stylesheets: builds must be offline and safe
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        cache_css_parsing=False,
        # Width and height attributes are written in the templates (Outlook reads only those);
        # premailer would copy CSS values into them, e.g. an invalid height="auto" on images.
        disable_basic_attributes=["width", "height"],
    ).transform(pretty_print=False).replace(' align="start"', "")


_BLOCK_START_RE = re.compile(
    r"(?<![\n>])(?=<(?:table|tr|td|th|p|div|h[1-6]|ul|ol|li|tbody|thead|tfoot|blockquote|hr|"
    r"!--\[if)\b)", re.IGNORECASE)


def break_lines(html: str) -> str:
    """Start each block element on a new line. Whitespace between blocks does not render,
    and short lines let a send encode the unchanging lines once and only the lines with a
    personal placeholder per recipient (see message.prepare)."""
    return _BLOCK_START_RE.sub("\n", html)
