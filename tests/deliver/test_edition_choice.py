"""check and send agree on which edition a reader with a regional language tag gets."""

from __future__ import annotations

from test_editions import multilingual, send_all  # noqa: F401 - fixtures and helpers

from newsletter.compose.edition import edition_language


def test_one_rule_picks_the_edition_for_a_regional_tag():
    assert edition_language("ar-EG", {"en", "fr", "ar"}, "en") == "ar"
    assert edition_language("fr-CA", {"en", "fr"}, "en") == "fr"
    assert edition_language("es-MX", {"en", "fr"}, "en") == "en"


def test_check_does_not_warn_about_a_reader_whose_regional_tag_has_an_edition(
        multilingual, capsys):  # noqa: F811
    csv = multilingual.root / "subscribers" / "regional.csv"
    csv.write_text("email,name,language\nlayla@example.com,Layla,ar-EG\n"
                   "luis@example.com,Luis,es-MX\n", encoding="utf-8")
    multilingual.cli("subscribers", "import", str(csv))
    capsys.readouterr()
    assert multilingual.cli("check", "2026-11") == 0
    out = capsys.readouterr().out
    assert "'ar-EG'" not in out and "'ar-eg'" not in out  # send gives them the Arabic edition
    assert "no 'es-mx' edition" in out.lower()  # and this one really gets the default
