"""HTML to the text/plain part: written to be read as is in a plain-text mail client."""

from __future__ import annotations

from newsletter.compose.textify import html_to_text
from newsletter.compose.textwidth import display_width


def test_headings_are_underlined():
    assert html_to_text("<h2>Trademarks abroad</h2><p>Text.</p><h3>Costs</h3><p>More.</p>") == (
        "Trademarks abroad\n=================\n\nText.\n\nCosts\n-----\n\nMore.")


def test_links_are_written_inline_after_their_text():
    text = html_to_text('<p>Read <a href="https://example.org/guide">the guide</a> today.</p>')
    assert text == "Read the guide <https://example.org/guide> today."


def test_link_whose_text_is_its_address_is_written_once():
    assert html_to_text('<p><a href="https://example.org/">https://example.org/</a></p>') == \
        "https://example.org/"


def test_mailto_link_shows_the_address():
    assert html_to_text('<p><a href="mailto:team@example.org">team@example.org</a></p>') == \
        "team@example.org"
    assert html_to_text('<p><a href="mailto:team@example.org">Write to us</a></p>') == \
        "Write to us <team@example.org>"


def test_lists_stay_on_consecutive_lines_with_markers():
    assert html_to_text("<p>Before:</p><ul><li>one</li><li>two<ul><li>nested</li></ul></li>"
                        "</ul><p>After.</p>") == "Before:\n\n- one\n- two\n  - nested\n\nAfter."
    assert html_to_text("<ol><li>first</li><li>second</li></ol>") == "1. first\n2. second"


def test_long_paragraphs_wrap_at_72_columns_and_list_items_hang():
    text = html_to_text("<p>" + "word " * 40 + "</p><ul><li>" + "long " * 20 + "</li></ul>")
    assert max(len(line) for line in text.splitlines()) <= 72
    paragraph, item = text.split("\n\n")
    assert len(paragraph.splitlines()) == 3
    first, second = item.splitlines()
    assert first.startswith("- long") and second.startswith("  long")


def test_a_long_url_is_never_broken():
    url = "https://example.org/" + "a" * 90
    assert url in html_to_text(f'<p>See <a href="{url}">this</a>.</p>')


def test_line_break_is_a_new_line_not_a_new_paragraph():
    assert html_to_text("<p>34 chemin des Colombettes<br>1211 Geneva 20</p>") == \
        "34 chemin des Colombettes\n1211 Geneva 20"


def test_quotes_code_images_tables_and_rules():
    assert html_to_text("<blockquote><p>The mark tells buyers.</p></blockquote>") == \
        "> The mark tells buyers."
    assert html_to_text("<pre><code>make golden\n    make test\n</code></pre>") == \
        "make golden\n    make test"
    assert html_to_text('<p><img src="https://example.org/i.png" alt="Three bottles"></p>') == \
        "[Three bottles]"
    assert html_to_text("<table><tr><th>Route</th><th>Cost</th></tr>"
                        "<tr><td>National</td><td>1,800 EUR</td></tr></table>") == \
        "Route    | Cost\nNational | 1,800 EUR"
    assert html_to_text("<p>a</p><hr><p>b</p>") == "a\n\n" + "-" * 20 + "\n\nb"


def test_entities_are_decoded_and_no_tags_remain():
    text = html_to_text("<p>Fish &amp; chips &lt;3 <b>bold</b> <span>span</span></p>")
    assert text == "Fish & chips <3 bold span"


def test_table_columns_align_by_display_width_with_wide_characters():
    text = html_to_text("<table><tr><th>路线</th><th>费用</th></tr>"
                        "<tr><td>National</td><td>1,800 EUR</td></tr></table>")
    assert text == "路线     | 费用\nNational | 1,800 EUR"  # 路线 is four columns wide
    first, second = text.split("\n")
    assert display_width(first.split("|")[0]) == display_width(second.split("|")[0])


def test_a_table_too_wide_for_a_line_is_written_cell_by_cell_under_its_header():
    row = "".join(f"<td>{'word ' * 6}{i}</td>" for i in range(4))
    head = "".join(f"<th>Column {i}</th>" for i in range(4))
    text = html_to_text(f"<table><tr>{head}</tr><tr>{row}</tr></table>")
    assert text.splitlines()[0] == "Column 0: word word word word word word 0"
    assert all(display_width(line) <= 72 for line in text.splitlines())


def test_chinese_text_wraps_between_characters_within_the_width():
    sentence = "中小企业可以通过注册商标来保护自己的品牌，并在出口之前做好准备。"
    text = html_to_text("<p>" + sentence * 4 + "</p>")
    lines = text.splitlines()
    assert len(lines) > 1
    assert all(display_width(line) <= 72 for line in lines)
    assert not any(line.startswith(("，", "。")) for line in lines)  # no closing mark first
    assert "".join(lines) == sentence * 4


def test_mixed_latin_and_chinese_keeps_latin_words_whole():
    sentence = "请访问 WIPO 网站 https://www.wipo.int/sme/ 了解更多。"
    text = html_to_text("<p>" + sentence * 5 + "</p>")
    assert all(display_width(line) <= 72 or "https://" in line for line in text.splitlines())
    assert text.count("https://www.wipo.int/sme/") == 5
