"""Event titles: the date a feed writes at the head of the title, in each edition's language."""

from __future__ import annotations

from datetime import date

import pytest

from newsletter.compose.event_dates import event_title_line, parse_english_day, split_event_title


@pytest.mark.parametrize("text", ["12 November 2026", "Thursday 12 Nov 2026", "12 Nov. 2026",
                                  "November 12, 2026", "Thu, Nov 12 2026", "2026-11-12"])
def test_the_date_spellings_feeds_use_are_read(text: str) -> None:
    assert parse_english_day(text) == date(2026, 11, 12)


@pytest.mark.parametrize("text", ["Webinar", "12–14 November 2026", "31 November 2026",
                                  "12 novembre 2026", "12 Smarch 2026", "2026-13-01", ""])
def test_anything_else_is_not_a_date(text: str) -> None:
    assert parse_english_day(text) is None


def test_a_dated_title_shows_its_day_in_the_edition_language() -> None:
    parts = split_event_title("12 November 2026 — Webinar: Trademarks")
    assert (parts.head, parts.day, parts.rest) == ("12 November 2026", date(2026, 11, 12),
                                                   "Webinar: Trademarks")
    labels = {lang: parts.label(lang) for lang in ("en", "fr", "es", "ar", "ru", "zh")}
    assert labels == {"en": "12 November 2026", "fr": "12 novembre 2026",
                      "es": "12 de noviembre de 2026", "ar": "12 نوفمبر 2026",
                      "ru": "12 ноября 2026\u202fг.", "zh": "2026年11月12日"}
    assert event_title_line("12 November 2026 — Webinar", "zh") == "2026年11月12日 — Webinar"


def test_a_head_that_is_not_a_date_is_shown_as_the_feed_wrote_it() -> None:
    parts = split_event_title("12–14 novembre 2026 — Atelier")
    assert parts.day is None and parts.label("ar") == "12–14 novembre 2026"
    whole = split_event_title("Webinar: Trademarks")
    assert (whole.head, whole.rest) == ("", "Webinar: Trademarks")
    assert event_title_line("Webinar: Trademarks", "fr") == "Webinar: Trademarks"
