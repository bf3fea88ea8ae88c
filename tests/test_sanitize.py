"""The allowlist sanitiser: only what email clients render safely survives."""

from __future__ import annotations

import re

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
    assert ('<img src="https://example.org/i.png" alt="Logo" width="100" '
            'style="width:100%; max-width:100px; height:auto">') in html


def test_no_rel_attribute_is_added_to_links():
    assert sanitize_html('<a href="https://example.org/">a</a>') == \
        '<a href="https://example.org/">a</a>'


def test_table_cells_keep_text_align_and_nothing_else_of_their_style():
    html = sanitize_html('<table><tr><td style="color:red; text-align:center; '
                         'background:url(https://evil.example/t.gif)">x</td>'
                         '<th style="text-align:right" align="left">y</th></tr></table>')
    assert '<td style="text-align:center">x</td>' in html
    assert '<th scope="row" style="text-align:right" align="left">y</th>' in html
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
    assert html == ('<p>ab<img src="https://example.org/ok.png" alt="kept" width="536" '
                    'style="width:100%; max-width:536px; height:auto"></p>')


def test_plain_text_drops_tags_and_their_script_content_and_decodes_entities():
    assert plain_text("<b>Fish &amp; chips</b> <script>alert(1)</script> <i>now</i>") == \
        "Fish & chips now"


def test_clean_line_removes_control_and_bidi_override_characters():
    assert clean_line("  Invoice\u202efdp.exe\r\nnext\x00 ") == "Invoice fdp.exe  next"


def test_every_image_gets_a_numeric_width_within_the_column_and_no_height():
    html = sanitize_html('<img src="https://e.org/a.png" alt="a">'
                         '<img src="https://e.org/b.png" alt="b" width="120" height="80">'
                         '<img src="https://e.org/c.png" alt="c" width="50%" height="auto">'
                         '<img src="https://e.org/d.png" alt="d" width="900">')
    widths = re.findall(r'<img [^>]*width="([^"]*)"', html)
    assert widths == ["536", "120", "536", "536"]  # Outlook ignores max-width: never wider
    assert "height=" not in html


def test_header_cells_carry_a_scope_and_an_empty_header_cell_becomes_a_data_cell():
    html = sanitize_html("<table><thead><tr><th></th><th>Fees</th></tr></thead>"
                         "<tbody><tr><th>Madrid</th><td>1</td></tr></tbody></table>")
    assert "<thead><tr><td></td><th scope=\"col\">Fees</th></tr></thead>" in html
    assert '<th scope="row">Madrid</th>' in html
    assert "<th></th>" not in html


def test_markup_nested_past_the_depth_limit_keeps_its_text_and_never_reaches_nh3_deep(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nesting import nh3_depths

    from newsletter.sanitize import MAX_DEPTH
    depths = nh3_depths(monkeypatch)
    deep = "<blockquote>" * 100_000 + "<b>deep</b>" + "</blockquote>" * 100_000
    html = sanitize_html(deep)
    assert "deep" in html and html.count("<blockquote>") <= MAX_DEPTH
    assert depths and max(depths) <= MAX_DEPTH + 1, max(depths)  # html5ever: 36 s at 100,000
    shallow = "<blockquote>" * 20 + "<b>kept</b>" + "</blockquote>" * 20
    assert sanitize_html(shallow) == shallow
