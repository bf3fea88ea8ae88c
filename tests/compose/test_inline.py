"""CSS inlining (premailer), once per edition: styles inlined, @media kept, placeholders intact."""

from __future__ import annotations

import re

from newsletter.compose.inline import inline_css
from newsletter.compose.personalise import NAME, UNSUBSCRIBE_URL

PAGE = """<!DOCTYPE html>
<html><head><style>
p {{ color: #333333; margin: 0 0 14px 0; }}
.footer a {{ color: #0b3d6b; }}
.container {{ width: 600px; }}
@media only screen and (max-width: 620px) {{
  .container {{ width: 100% !important; }}
}}
</style></head>
<body><table class="container"><tr><td class="footer">
<p>Dear {name},</p>
<p><a href="{href}">Unsubscribe</a></p>
</td></tr></table></body></html>
"""


def page(name: str = NAME, href: str = UNSUBSCRIBE_URL) -> str:
    return PAGE.format(name=name, href=href)


def test_styles_are_inlined_on_the_elements_they_select():
    html = inline_css(page())
    assert html.count('<p style="color:#333; margin:0 0 14px 0">') == 2
    assert re.search(r'<a href="[^"]*" style="color:#0b3d6b">Unsubscribe</a>', html)
    # width and height attributes come from the templates only: premailer copying CSS into
    # them wrote an invalid height="auto" on every image
    assert '<table class="container" style="width:600px">' in html


def test_css_sizes_are_not_copied_into_width_and_height_attributes():
    html = inline_css('<html><head><style>img { width: 100%; height: auto; }</style></head>'
                      '<body><img src="https://e.org/a.png" width="536"></body></html>')
    assert 'width="536"' in html and 'height="auto"' not in html and 'width="100%"' not in html


def test_media_block_survives_with_important():
    html = inline_css(page())
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style, "the @media rules must stay in a <style> element for phones"
    assert "@media only screen and (max-width: 620px)" in style.group(1)
    assert "width: 100% !important" in style.group(1)
    assert "#333" not in style.group(1)  # the plain rules moved onto the elements


def test_placeholders_are_left_alone_in_href_and_text():
    html = inline_css(page())
    assert f'href="{UNSUBSCRIBE_URL}"' in html
    assert f"Dear {NAME}," in html


def test_placeholder_inside_a_longer_url_is_left_alone():
    html = inline_css(page(href=f"https://example.org/u/{UNSUBSCRIBE_URL}?list=1"))
    assert f'href="https://example.org/u/{UNSUBSCRIBE_URL}?list=1"' in html


def test_jinja_style_placeholder_in_an_href_would_be_mangled():
    # Why the placeholders are __NL_WORDS__: lxml percent-encodes the spaces of "{{ x }}"
    # inside href, so a per-recipient substitution after inlining would no longer find it.
    html = inline_css(page(name="{{ name }}", href="{{ unsubscribe_url }}"))
    assert 'href="{{ unsubscribe_url }}"' not in html
    assert 'href="{{%20unsubscribe_url%20}}"' in html
    assert "Dear {{ name }}," in html  # text is untouched; only the URL attribute breaks


def test_inlining_never_fetches_external_stylesheets(feed_server):
    url = feed_server.route("/style.css", "p { color: red; }", headers={"Content-Type": "text/css"})
    html = inline_css(page().replace("<head>", f'<head><link rel="stylesheet" href="{url}">'))
    assert feed_server.requests == []  # builds stay offline: allow_network=False
    assert "color:red" not in html
    assert "Unsubscribe" in html
