"""Draft and feed text can never fill a per-recipient slot, whatever it contains."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import yaml
from conftest_delivery import DeliveryProject
from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_server import Script, ScriptedServer

from newsletter.compose.personalise import (
    NAME,
    UNSUBSCRIBE_URL,
    Placeholders,
    Recipient,
    neutralise,
    personalise_html,
    personalise_text,
    seal_slots,
)

NOW = "2026-11-22T10:00"
EVIL = "https://evil.example/steal?u="
# Every way we know to spell a slot in a draft or a feed: plain, lower case, entity-encoded
# (HTML parsers and the CSS inliner decode entities), split by a comment (the sanitiser drops
# comments), and next to a real slot's text.
SPELLINGS = ("__NL_NAME__", "__NL_UNSUBSCRIBE_URL__", "&#95;&#95;NL_NAME&#95;&#95;",
             "&#x5f;_NL_UNSUBSCRIBE_URL__", "__NL<!-- x -->_NAME__", "___NL_NAME___",
             "__NL___NL_NAME__")
RECIPIENT = Recipient("Ann Example", "https://list.example/unsubscribe/v2secret")

slot_free_text = st.text(alphabet=st.sampled_from("_NLnl AMEUSBCRIB<>&;#95x!-")
                         | st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=400, deadline=None)
@given(text=slot_free_text)
def test_neutralised_text_is_never_personalised(text: str) -> None:
    neutral = neutralise(text)
    assert personalise_text(neutral, RECIPIENT, "reader") == neutral
    assert personalise_html(neutral, RECIPIENT, "reader") == neutral
    assert "__nl_" not in neutral.lower()


@settings(max_examples=400, deadline=None)
@given(before=slot_free_text, after=slot_free_text)
def test_only_the_one_render_markers_become_slots(before: str, after: str) -> None:
    """Around a real slot, hostile text on both sides: exactly one value is filled in."""
    markers = Placeholders.for_one_render()
    sealed = seal_slots(f"{before}<b>{markers.name}</b>{after}", markers)
    filled = personalise_text(sealed, Recipient("\x01", ""), "reader")
    assert filled.count("\x01") == 1 + before.count("\x01") + after.count("\x01")


def test_a_guessed_or_stale_marker_is_neutralised_too() -> None:
    markers, other = Placeholders.for_one_render(), Placeholders.for_one_render()
    assert markers.name != other.name  # a fresh nonce per render
    sealed = seal_slots(f"{other.name} {markers.name} {NAME} {UNSUBSCRIBE_URL}", markers)
    assert sealed.count(NAME) == 1 and UNSUBSCRIBE_URL not in sealed


def _plant(project: DeliveryProject, *, draft_too: bool = True) -> None:
    """Slot spellings in a feed item's link, title and summary, and (draft_too) in the sample
    draft's subject, preheader and body."""
    _plant_feed_item(project)
    if draft_too:
        _plant_draft(project)


def _plant_draft(project: DeliveryProject) -> None:
    draft = project.root / "issues" / "2026-11.md"
    text = draft.read_text(encoding="utf-8")
    text = re.sub(r"^subject: .*$", 'subject: "For __NL_NAME__: news"', text, count=1, flags=re.M)
    text = re.sub(r"^preheader: .*$", 'preheader: "Hello __NL_NAME__ __NL_UNSUBSCRIBE_URL__"',
                  text, count=1, flags=re.M)
    body = "\n".join(f"Line {n}: <span>{s}</span> and \\_\\_NL_NAME\\_\\_ and "
                     f"[a link]({EVIL}__NL_UNSUBSCRIBE_URL__&n=__NL_NAME__)."
                     for n, s in enumerate(SPELLINGS))
    text = text.replace("## Trademarks for small exporters",
                        body + "\n\n## Trademarks for small exporters", 1)
    draft.write_text(text, encoding="utf-8")


def _plant_feed_item(project: DeliveryProject) -> None:
    snap = project.root / "issues" / "2026-11.items.yaml"
    data = yaml.safe_load(snap.read_text(encoding="utf-8"))
    data["items"].insert(0, {
        "id": "evil-1", "section": "News in brief", "kind": "news", "feed": "news",
        "title": "Hi __NL_NAME__ " + " ".join(SPELLINGS),
        "link": f"{EVIL}__NL_UNSUBSCRIBE_URL__&n=__NL_NAME__",
        "published": "2026-10-31T09:00:00Z",
        "summary": "<p>" + " ".join(SPELLINGS) + f' <a href="{EVIL}__NL_UNSUBSCRIBE_URL__">'
                   "x</a></p>"})
    snap.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _assert_only_template_slots(message, name: str) -> None:  # noqa: ANN001
    unsubscribe = message["List-Unsubscribe"].split(">")[0].lstrip("<")
    token = unsubscribe.rsplit("/", 1)[1]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert name not in message["Subject"]
    for part in (text, html):
        assert part.count(name) == 1  # the greeting, nothing else
        assert part.count(token) == 2  # the footer's unsubscribe and preferences links only
        assert part.count(EVIL) >= 2  # the planted links are there, carrying no token
    for href in re.findall(r'href="([^"]*)"', html):
        if href.startswith(EVIL):
            assert token not in href and name not in href, href
    assert f'href="{unsubscribe}"' in html and f"Unsubscribe: {unsubscribe}" in text
    preferences = unsubscribe.replace("/unsubscribe/", "/preferences/")
    assert f'href="{preferences}"' in html and f": {preferences}" in text


def test_a_message_delivered_over_smtp_fills_no_slot_a_feed_item_planted(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    _plant(delivery_project, draft_too=False)
    assert delivery_project.cli("send", "--now", NOW) == 0
    for n, address in enumerate(delivery_project.addresses):
        _assert_only_template_slots(smtp_script.parsed(address)[0], f"Reader {n}")


def test_a_draft_that_plants_a_slot_is_not_sent(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer, smtp_script: Script,
        capsys) -> None:
    _plant(delivery_project)
    assert delivery_project.cli("send", "--now", NOW) == 1
    assert smtp_script.messages == []
    assert "__NL_NAME__ is never filled in" in capsys.readouterr().err


def test_the_message_built_from_a_planted_draft_fills_only_the_templates_slots(
        delivery_project: DeliveryProject) -> None:
    """Should check be skipped, the edition itself still fills no planted slot."""
    from email import message_from_bytes, policy

    from newsletter.compose.drafts import load_draft
    from newsletter.compose.message import Personal, build_message
    from newsletter.compose.render import render_edition
    from newsletter.compose.snapshot import read_snapshot
    from newsletter.config import load_config
    from newsletter.deliver.send import envelope_for, unsubscribe_url_maker

    _plant(delivery_project)
    config = load_config(delivery_project.config)
    draft = load_draft(delivery_project.root / "issues" / "2026-11.md",
                       timezone=config.timezone)
    items = read_snapshot(delivery_project.root / "issues" / "2026-11.items.yaml").items
    edition = render_edition(config, draft, items)
    url = unsubscribe_url_maker(config, "test-secret")("ann@example.org")
    raw = build_message(edition, envelope_for(config),
                        Personal("ann@example.org", "Ann Example", url, "<1@example.org>"),
                        datetime.now(UTC))
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "For __NL_NAME__: news"
    _assert_only_template_slots(message, "Ann Example")


def test_check_reports_a_planted_placeholder_in_the_draft_and_the_snapshot(
        delivery_project: DeliveryProject, capsys) -> None:
    _plant(delivery_project)
    capsys.readouterr()
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 1
    out = capsys.readouterr().out
    draft_lines = [line for line in out.splitlines() if "2026-11.md:" in line
                   and "is never filled in" in line]
    snap_lines = [line for line in out.splitlines() if "2026-11.items.yaml:" in line
                  and "in a feed item is sent as text" in line]
    assert any(": error: __NL_NAME__ is never filled in" in line for line in draft_lines)
    assert re.search(r"2026-11\.md:2: error: __NL_NAME__", out)  # the subject's line
    assert snap_lines and all(": warning: " in line for line in snap_lines)


_SLOTS_REGEX = re.compile("|".join(re.escape(k) for k in (
    "__NL_NAME__", "__NL_UNSUBSCRIBE_URL__", "__NL_PREFERENCES_URL__", "__NL_EDITION_NOTE__")))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["__NL_NAME__", "__NL_UNSUBSCRIBE_URL__", "__NL_EDITION_NOTE__",
                                 "__NL_NAME", "_", "__", "NL_", "Dear ", " ", "é", "__NL_X__"]),
                max_size=12),
       st.text(max_size=20))
def test_fill_from_a_kept_split_equals_the_regex_substitution(pieces: list[str],
                                                               name: str) -> None:
    from newsletter.compose.personalise import fill

    values = {"__NL_NAME__": name, "__NL_UNSUBSCRIBE_URL__": "https://x/u/t",
              "__NL_PREFERENCES_URL__": "https://x/p/t", "__NL_EDITION_NOTE__": ""}
    template = "".join(pieces)
    expected = _SLOTS_REGEX.sub(lambda m: values[m.group()], template)
    assert fill(template, values) == expected
    assert fill(template, values) == expected  # the second time from the kept split


@given(st.text(max_size=30))
def test_the_preferences_url_is_the_quoted_one_whatever_the_base_holds(base: str) -> None:
    from newsletter.compose.personalise import Recipient, safe_url, slot_values

    recipient = Recipient("", f"https://{base}/unsubscribe/v2abc.def")
    text, _ = slot_values(recipient, "reader")
    assert text["__NL_PREFERENCES_URL__"] == safe_url(recipient.preferences_url)
