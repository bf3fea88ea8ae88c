"""newsletter.toml is validated on load; every bad key is named, all at once."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
[newsletter]
name = "Test letter"
from = "Test letter <news@example.org>"
base_url = "https://example.org/newsletter/"
list_id = "test.example.org"
timezone = "Europe/Zurich"
postal_address = "1 Main Street, Geneva"

[[feeds]]
name = "news"
url = "feeds/news.xml"
section = "News"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_shipped_newsletter_toml_loads_with_its_feeds_and_zone():
    config = load_config(REPO / "newsletter.toml")
    assert config.name == "IP for Business"
    assert config.sender.addr_spec == "newsletter@ipbusiness.example.org"
    assert config.timezone == ZoneInfo("Europe/Zurich")
    assert [f.name for f in config.feeds] == ["news", "events"]
    assert [f.kind for f in config.feeds] == ["news", "events"]
    assert config.feeds[0].url == str(REPO / "feeds" / "news.xml")
    assert not config.feeds[0].is_remote
    assert config.store_path == REPO / "newsletter.db"


def test_minimal_config_fills_defaults_and_strips_trailing_slash_of_base_url(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.base_url == "https://example.org/newsletter"
    assert config.default_language == "en"
    assert config.feeds[0].max_items == 5
    assert config.connections == 2
    assert config.root == tmp_path.resolve()


def test_http_feed_url_is_kept_and_local_path_is_resolved_against_the_config_folder(tmp_path):
    text = GOOD + '\n[[feeds]]\nname = "events"\nurl = "https://example.org/events.xml"\n' \
                  'section = "Events"\nkind = "events"\n'
    config = load_config(write(tmp_path, text))
    assert config.feeds[0].url == str(tmp_path.resolve() / "feeds" / "news.xml")
    assert config.feeds[1].url == "https://example.org/events.xml"
    assert config.feeds[1].is_remote


def test_unknown_section_is_named_with_the_known_ones(tmp_path):
    message = config_error(tmp_path, GOOD + "\n[extras]\nx = 1\n")
    assert "'extras' is not a known section" in message
    assert ("known: bounces, delivery, dkim, feeds, network, newsletter, reach, review, store, "
            "subscribers, translations, web, webhooks)") in message


def test_unknown_key_is_named_with_its_section(tmp_path):
    message = config_error(tmp_path, GOOD.replace('name = "Test letter"',
                                                  'name = "Test letter"\ncolour = "blue"'))
    assert "'newsletter.colour' is not a known key" in message


def test_unknown_key_in_a_feed_table_is_named(tmp_path):
    message = config_error(tmp_path, GOOD + 'refresh = 5\n')
    assert "'feeds.refresh' is not a known key" in message


def test_delivery_batch_size_defaults_to_20_and_must_be_a_whole_number_of_at_least_1(
        tmp_path):
    assert load_config(write(tmp_path, GOOD)).batch_size == 20
    assert load_config(write(tmp_path, GOOD + "[delivery]\nbatch_size = 1\n")).batch_size == 1
    message = config_error(tmp_path, GOOD + "[delivery]\nbatch_size = 0\n")
    assert "'delivery.batch_size' must be a whole number of at least 1" in message


def test_wrong_type_is_named(tmp_path):
    message = config_error(tmp_path, GOOD.replace('name = "Test letter"', "name = 5"))
    assert "'newsletter.name' must be a non-empty string" in message


def test_max_items_must_be_a_whole_number(tmp_path):
    message = config_error(tmp_path, GOOD + 'max_items = "five"\n')
    assert "'feeds[1].max_items' must be a whole number of at least 1" in message


def test_bad_timezone_is_named_with_an_example(tmp_path):
    message = config_error(tmp_path, GOOD.replace("Europe/Zurich", "Mars/Olympus"))
    assert "'newsletter.timezone' is not a known time zone: 'Mars/Olympus'" in message
    assert "Europe/Zurich" in message


def test_ftp_feed_url_is_refused(tmp_path):
    message = config_error(tmp_path, GOOD.replace('"feeds/news.xml"', '"ftp://example.org/f.xml"'))
    assert "'feeds[1].url' must be http(s) or a local path, not ftp:" in message


def test_base_url_must_be_http(tmp_path):
    message = config_error(tmp_path, GOOD.replace("https://example.org/newsletter/",
                                                  "ftp://example.org/"))
    assert "'newsletter.base_url' must start with https://" in message


def test_missing_required_key_is_named(tmp_path):
    message = config_error(tmp_path, GOOD.replace('list_id = "test.example.org"\n', ""))
    assert "'newsletter.list_id' is missing" in message


def test_repeated_feed_name_is_refused(tmp_path):
    message = config_error(tmp_path, GOOD + GOOD[GOOD.index("[[feeds]]"):])
    assert "'feeds[2].name' repeats the feed name 'news'" in message


def test_every_problem_is_reported_at_once_naming_the_file(tmp_path):
    text = (GOOD.replace("Europe/Zurich", "Nowhere/Town")
            .replace('"feeds/news.xml"', '"ftp://example.org/f.xml"')
            + "max_items = 0\n\n[delivery]\nconnections = \"two\"\n\n[extras]\n")
    message = config_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'newsletter.toml'}: ")
    for expected in ("'newsletter.timezone'", "'feeds[1].url'", "'feeds[1].max_items'",
                     "'delivery.connections'", "'extras' is not a known section"):
        assert expected in message
    assert "\n" not in message  # one line for the terminal and for cron mail


def test_invalid_toml_names_the_file(tmp_path):
    message = config_error(tmp_path, "[newsletter\nname = 1\n")
    assert message.startswith(str(tmp_path / "newsletter.toml"))
    assert "not valid TOML" in message


def test_missing_config_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere.toml")
    assert str(info.value) == f"{tmp_path / 'nowhere.toml'}: no such file (pass --config PATH)"


def test_cli_with_a_bad_config_exits_2_with_one_line_naming_the_file(tmp_path,
                                                                     newsletter_script):
    write(tmp_path, GOOD.replace("Europe/Zurich", "Mars/Olympus")).rename(tmp_path / "bad.toml")
    result = newsletter_script("--config", "bad.toml", "check", "2026-11", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("newsletter: bad.toml: ")
    assert "'newsletter.timezone' is not a known time zone" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_with_a_missing_config_exits_2_in_process(tmp_path, capsys):
    from newsletter.cli.main import main

    code = main(["--config", str(tmp_path / "absent.toml"), "check", "2026-11"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"newsletter: {tmp_path / 'absent.toml'}: no such file (pass --config PATH)\n"
