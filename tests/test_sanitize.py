"""The allowlist sanitiser: only what email clients render safely survives."""

from __future__ import annotations

import pytest

from newsletter.sanitize import clean_line, plain_text, sanitize_html


@pytest.mark.parametrize("hostile, banned", [
    ("<script>alert(1)</script><p>ok</p>", ["<script", "alert(1)"]),
    ('<iframe src="https://evil.example/"></iframe><p>ok</p>', ["<iframe", "evil.example"]),
    ('<form action="https://evil.example/"><input name="pw"><button>Go</button></form><p>ok</p>',
     ["<form", "<input", "<button", "evil.example"]),
    ('<p onclick="steal()">ok</p>', ["onclick", "steal"]),
    ('<p><img src="https://example.org/x.png" alt="x" onerror="steal()">ok</p>',
     ["onerror", "steal"]),
    ('<p><a href="javascript:alert(1)">ok</a></p>', ["javascript:", "alert"]),
    ('<p><a href="JaVaScRiPt:alert(1)">ok</a></p>', ["alert"]),
    ('<p><a href="vbscript:msgbox(1)">ok</a></p>', ["vbscript", "msgbox"]),
    ('<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="x">ok</p>', ["data:", "base64"]),
    ('<p><a href="data:text/html,&lt;script&gt;x&lt;/script&gt;">ok</a></p>', ["data:"]),
    ("<style>body{display:none}</style><p>ok</p>", ["<style", "display"]),
    ('<p style="position:fixed;top:0">ok</p>', ["style=", "fixed"]),
    ("<object data='x.swf'></object><embed src='x.swf'><p>ok</p>", ["<object", "<embed", "swf"]),
    ("<!-- a comment --><p>ok</p>", ["<!--", "comment"]),
    ('<svg onload="steal()"><circle/></svg><p>ok</p>', ["<svg", "onload"]),
])
def test_hostile_markup_does_not_survive(hostile, banned):
    html = sanitize_html(hostile)
    assert "ok" in html
    for text in banned:
        assert text.lower() not in html.lower()


def test_safe_links_and_images_survive():
    html = sanitize_html('<p><a href="https://example.org/a" title="A">a</a> '
                         '<a href="mailto:team@example.org">mail</a> '
                         '<img src="https://example.org/i.png" alt="Logo" width="100"></p>')
    assert '<a href="https://example.org/a" title="A">a</a>' in html
    assert '<a href="mailto:team@example.org">mail</a>' in html
    assert '<img src="https://example.org/i.png" alt="Logo" width="100">' in html


def test_no_rel_attribute_is_added_to_links():
    assert sanitize_html('<a href="https://example.org/">a</a>') == \
        '<a href="https://example.org/">a</a>'


def test_table_cells_keep_text_align_and_nothing_else_of_their_style():
    html = sanitize_html('<table><tr><td style="color:red; text-align:center; '
                         'background:url(https://evil.example/t.gif)">x</td>'
                         '<th style="text-align:right" align="left">y</th></tr></table>')
    assert '<td style="text-align:center">x</td>' in html
    assert '<th style="text-align:right" align="left">y</th>' in html
    assert "color" not in html and "evil" not in html


def test_relative_urls_are_kept_for_drafts_so_check_can_point_at_them():
    html = sanitize_html('<a href="/about">about</a><img src="img/x.png" alt="x">')
    assert 'href="/about"' in html
    assert 'src="img/x.png"' in html


def test_relative_urls_are_dropped_when_only_absolute_ones_make_sense():
    html = sanitize_html('<p><a href="/about">about</a> <a href="https://ok.example/">ok</a></p>',
                         absolute_only=True)
    assert html == '<p><a>about</a> <a href="https://ok.example/">ok</a></p>'


def test_an_image_whose_url_was_dropped_is_dropped_whole():
    html = sanitize_html('<p>a<img src="/x.png" alt="relative"><img src="data:image/png;base64,AA"'
                         ' alt="inline">b<img src="https://example.org/ok.png" alt="kept"></p>',
                         absolute_only=True)
    assert html == '<p>ab<img src="https://example.org/ok.png" alt="kept"></p>'


def test_plain_text_drops_tags_and_their_script_content_and_decodes_entities():
    assert plain_text("<b>Fish &amp; chips</b> <script>alert(1)</script> <i>now</i>") == \
        "Fish & chips now"


def test_clean_line_removes_control_and_bidi_override_characters():
    assert clean_line("  Invoice\u202efdp.exe\r\nnext\x00 ") == "Invoice fdp.exe  next"
