"""Segments: the audience and {only=tag} sections pick who gets an issue and which sections,
frozen with the issue, sent over a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import shutil
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer

from newsletter.compose.only_sections import variant_body

NOW = "2026-11-22T10:00"
LATER = "2026-11-22T10:30"

BODY = """Welcome to the issue.

## Trademarks for everyone

Everyone reads this section.

## Geneva workshop {only=geneva}

Come to the Geneva workshop on 12 November.

### Geneva parking {only=parking}

Park behind the building.

## Lausanne fair {only=lausanne,vaud}

Visit our stand at the Lausanne fair.

## Closing words

See you next month.
"""

EMPTY_SNAPSHOT = """issue: 2026-11
pulled_at: '2026-11-22T09:00:00Z'
window:
  start: '2026-10-01T00:00:00Z'
  end: '2026-11-05T08:00:00Z'
items: []
"""


def write_draft(project: DeliveryProject, body: str = BODY, *, front: str = "",
                language: str = "", items: bool = False) -> Path:
    """A ready, due draft; its snapshot has no feed items unless items=True (the sample's)."""
    suffix = f".{language}" if language else ""
    path = project.root / "issues" / f"2026-11{suffix}.md"
    path.write_text(f"""---
subject: "Who sees what{' (' + language + ')' if language else ''}"
preheader: "Sections for some readers only."
status: ready
send_at: 2026-11-05T09:00
{front}---
{body}""", encoding="utf-8")
    snapshot = project.root / "issues" / f"2026-11{suffix}.items.yaml"
    if items:
        shutil.copy(SAMPLE_ISSUES / "2026-11.items.yaml", snapshot)
    else:
        snapshot.write_text(EMPTY_SNAPSHOT, encoding="utf-8")
    return path


def write_readers(project: DeliveryProject, rows: list[tuple[str, str, str]]) -> None:
    """(address, language, tags separated by ;) as the editors' CSV."""
    lines = ["email,name,language,tags"] + [f"{a},{a.split('@')[0].title()},{lang},{tags}"
                                            for a, lang, tags in rows]
    (project.root / "subscribers" / "sample.csv").write_text("\n".join(lines) + "\n",
                                                            encoding="utf-8")


def html_of(script: Script, address: str) -> str:
    messages = script.parsed(address)
    assert len(messages) == 1, f"{address} got {len(messages)} message(s)"
    message: EmailMessage = messages[0]
    return message.get_body(("html",)).get_content()


def text_of(script: Script, address: str) -> str:
    return script.parsed(address)[0].get_body(("plain",)).get_content()


def test_readers_get_only_the_sections_their_tags_open(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    write_draft(delivery_project)
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", "vaud"),
                                     ("cy@example.com", "en", ""),
                                     ("dee@example.com", "en", "geneva;parking;lausanne")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    seen = {}
    for address in ("ana@example.com", "ben@example.com", "cy@example.com", "dee@example.com"):
        html, text = html_of(smtp_script, address), text_of(smtp_script, address)
        assert "{only" not in html and "{only" not in text  # the marker is never shown
        assert "Trademarks for everyone" in html and "Closing words" in html
        seen[address] = {title for title in ("Geneva workshop", "Geneva parking",
                                             "Lausanne fair") if title in html and title in text}
    assert seen == {"ana@example.com": {"Geneva workshop"},
                    "ben@example.com": {"Lausanne fair"},
                    "cy@example.com": set(),
                    "dee@example.com": {"Geneva workshop", "Geneva parking", "Lausanne fair"}}
    with sqlite3.connect(delivery_project.db) as conn:
        variants = dict(conn.execute("SELECT s.email, d.variant FROM deliveries d JOIN "
                                     "subscribers s ON s.id = d.subscriber_id"))
    assert variants == {"ana@example.com": "geneva", "ben@example.com": "vaud",
                        "cy@example.com": "", "dee@example.com": "geneva,lausanne,parking"}
    capsys.readouterr()
    assert delivery_project.cli("status", "2026-11") == 0
    out = capsys.readouterr().out
    assert "segments: en (everyone): 1 plain, 1 +geneva, 1 +geneva+lausanne+parking, " \
           "1 +vaud" in out


def test_audience_tags_and_exclude_tags_pick_who_gets_the_issue(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    write_draft(delivery_project, front="audience: {tags: [members, partners], "
                                        "exclude_tags: [staff]}\n")
    write_readers(delivery_project, [("ana@example.com", "en", "members"),
                                     ("ben@example.com", "en", "partners;geneva"),
                                     ("cy@example.com", "en", ""),
                                     ("dee@example.com", "en", "members;staff")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"ana@example.com": 1, "ben@example.com": 1}
    assert "Geneva workshop" in html_of(smtp_script, "ben@example.com")
    out = capsys.readouterr().out
    assert "2 subscriber(s) to send to; 2 outside its audience" in out
    assert delivery_project.cli("status", "2026-11") == 0
    assert "segments: en (tags members, partners; not staff): 1 plain, 1 +geneva; " \
           "2 outside the audience" in capsys.readouterr().out


def test_each_language_edition_has_its_own_sections_and_audience(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_draft(delivery_project)
    write_draft(delivery_project, language="fr", front="audience: {exclude_tags: [staff]}\n",
                body="Bienvenue.\n\n## Pour tous\n\nTout le monde lit ceci.\n\n"
                     "## Atelier de Genève {only=geneva}\n\nVenez à l'atelier.\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva;staff"),
                                     ("bea@example.com", "fr", "geneva"),
                                     ("cle@example.com", "fr", ""),
                                     ("dan@example.com", "fr", "staff")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    # the en edition has no audience of its own and the default's is everyone
    assert "Geneva workshop" in html_of(smtp_script, "ana@example.com")
    assert "Atelier de Genève" in html_of(smtp_script, "bea@example.com")
    assert "Atelier de Genève" not in html_of(smtp_script, "cle@example.com")
    assert "Pour tous" in html_of(smtp_script, "cle@example.com")
    assert "dan@example.com" not in smtp_script.copies()  # outside the fr edition's audience


def test_a_resumed_send_gives_the_variant_and_audience_frozen_by_the_first_run(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_draft(delivery_project)
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", "")])
    smtp_script.rcpt["ana@example.com"] = ["451 4.3.0 try again later"]
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert delivery_project.states() == {"ana@example.com": "deferred",
                                         "ben@example.com": "sent"}
    # Between the runs the editors change Ana's tags and add a Geneva reader.
    write_readers(delivery_project, [("ana@example.com", "en", "lausanne"),
                                     ("ben@example.com", "en", ""),
                                     ("cat@example.com", "en", "geneva")])
    assert delivery_project.cli("send", "--now", LATER) == 0
    html = html_of(smtp_script, "ana@example.com")
    assert "Geneva workshop" in html and "Lausanne fair" not in html
    assert "cat@example.com" not in smtp_script.copies()  # the audience was frozen too
    with sqlite3.connect(delivery_project.db) as conn:
        tags = conn.execute("SELECT tags FROM subscribers WHERE email = 'ana@example.com'")
        assert tags.fetchone()[0] == "lausanne"  # the import did run


def test_a_reader_left_with_no_section_gets_no_email_and_is_counted(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    write_draft(delivery_project, body="Welcome.\n\n## Geneva workshop {only=geneva}\n\n"
                                       "Come along.\n\n## Vaud news {only=vaud}\n\nNews.\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", ""),
                                     ("cy@example.com", "en", "basel")])
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert "2 reader(s) of the 'en' edition would get no section" in out
    assert "segments now: en (everyone): 1 +geneva; 2 with no section for them " \
           "(not sent)" in out
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"ana@example.com": 1}
    assert "1 subscriber(s) to send to; 2 with no section for them" in capsys.readouterr().out
    assert delivery_project.cli("status", "2026-11") == 0
    assert "2 with no section for them (not sent)" in capsys.readouterr().out


def test_feed_items_are_content_so_no_reader_is_left_out(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_draft(delivery_project, items=True,
                body="Welcome.\n\n## Geneva workshop {only=geneva}\n\nCome along.\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", "")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"ana@example.com": 1, "ben@example.com": 1}
    assert "Geneva workshop" not in html_of(smtp_script, "ben@example.com")
    assert "News in brief" in html_of(smtp_script, "ben@example.com")


def test_a_letter_with_only_an_introduction_still_goes_to_its_audience(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_draft(delivery_project, body="A short note to our Geneva members.\n",
                front="audience: {tags: [geneva]}\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", "")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"ana@example.com": 1}
    assert "A short note to our Geneva members." in html_of(smtp_script, "ana@example.com")


def test_check_counts_who_would_get_each_variant_and_warns_of_tags_nobody_has(
        delivery_project: DeliveryProject, capsys) -> None:
    path = write_draft(delivery_project, front="audience: {exclude_tags: [staf]}\n",
                       body=BODY.replace("{only=lausanne,vaud}", "{only=lausane}"))
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", "staff"),
                                     ("cy@example.com", "en", "")])
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    out = capsys.readouterr().out
    lines = path.read_text(encoding="utf-8").split("\n")
    marker_line = lines.index("## Lausanne fair {only=lausane}") + 1
    audience_line = next(n for n, line in enumerate(lines, 1) if line.startswith("audience:"))
    assert f"{path}:{marker_line}: warning: {{only=lausane}}: no subscriber has the tag " \
           "'lausane'" in out
    assert f"{path}:{audience_line}: warning: audience: no subscriber has the tag 'staf'" in out
    assert "segments now: en (not staf): 2 plain, 1 +geneva" in out
    assert not (delivery_project.root / "newsletter.db").exists()  # check writes nothing


def test_an_only_marker_without_a_tag_is_an_error_naming_its_line_and_send_refuses(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    path = write_draft(delivery_project, body="Hi.\n\n## Geneva {only=}\n\nText.\n\n"
                                              "## Basel {onyl=basel}\n\nText.\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva")])
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 1
    out = capsys.readouterr().out
    lines = path.read_text(encoding="utf-8").split("\n")
    assert f"{path}:{lines.index('## Geneva {only=}') + 1}: error: {{only=}} names no tag" in out
    assert f"{path}:{lines.index('## Basel {onyl=basel}') + 1}: warning: heading attribute " \
           "{onyl=...} is not known" in out
    assert delivery_project.cli("send", "--now", NOW) == 1
    assert smtp_script.copies() == {}


def test_dry_run_counts_only_the_readers_a_segmented_send_would_mail(
        delivery_project: DeliveryProject, capsys) -> None:
    write_draft(delivery_project, body="Hi.\n\n## Geneva {only=geneva}\n\nText.\n",
                front="audience: {exclude_tags: [staff]}\n")
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", ""),
                                     ("cy@example.com", "en", "geneva;staff")])
    assert delivery_project.cli("send", "--dry-run", "--now", NOW) == 0
    assert "dry run: would send 1 message(s) for 2026-11" in capsys.readouterr().out


@pytest.mark.parametrize(("tags", "kept"), [
    (frozenset(), ["intro", "## All", "## B", "```", "## not a heading {only=x}", "```"]),
    # the #### heading is inside the ### part for b: it goes with it
    (frozenset({"a"}), ["intro", "## All", "## A", "text a", "## B",
                        "```", "## not a heading {only=x}", "```"]),
    (frozenset({"a", "b"}), ["intro", "## All", "## A", "text a", "### A only-b", "text ab",
                             "#### A deep", "deep", "## B", "```",
                             "## not a heading {only=x}", "```"]),
])
def test_a_marked_part_runs_to_the_next_heading_of_its_level_or_higher(
        tags: frozenset[str], kept: list[str]) -> None:
    body = "\n".join(["intro", "## All", "## A {only=a}", "text a", "### A only-b {only=b}",
                      "text ab", "#### A deep", "deep", "## B", "```",
                      "## not a heading {only=x}", "```"])
    assert variant_body(body, tags).split("\n") == kept


def test_an_edition_with_no_content_at_all_is_sent_to_no_one(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    write_draft(delivery_project, body="## Coming soon\n\n## Also coming\n")
    write_readers(delivery_project, [("ana@example.com", "en", "")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {}
    assert "0 subscriber(s) to send to; 1 with no section for them" in capsys.readouterr().out


def test_a_translator_gets_the_only_marker_as_a_code_and_the_translation_keeps_it() -> None:
    from newsletter.compose.xliff_inline import Ph, plain_text
    from newsletter.compose.xliff_segments import render_body, split_document

    doc = split_document("Subject", "", "Hi.\n\n## Geneva workshop {only=geneva,vaud}\n\n"
                                        "Come along.\n")
    [heading] = [u for u in doc.units if u.kind == "heading"]
    assert plain_text(heading.content).strip() == "Geneva workshop"  # nothing to translate
    [code] = heading.codes
    assert "{only=geneva,vaud}" in code.start and isinstance(heading.content[-1], Ph)
    translated = render_body(doc, {heading.id: ("Atelier de Genève", heading.content[-1])})
    assert "## Atelier de Genève {only=geneva,vaud}" in translated
    assert "Atelier de Genève" in variant_body(translated, frozenset({"vaud"}))
    assert "Atelier de Genève" not in variant_body(translated, frozenset())


def test_build_with_tags_writes_the_variant_that_reader_gets(
        delivery_project: DeliveryProject, capsys) -> None:
    write_draft(delivery_project)
    assert delivery_project.cli("build", "2026-11", "--no-screenshots", "--tags",
                                "vaud;parking", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert "built 2026-11 (en) as a reader tagged 'vaud;parking'" in out
    html = (delivery_project.root / "build" / "2026-11+parking+vaud" / "email.html").read_text(
        encoding="utf-8")
    # parking alone opens nothing: its part sits inside the Geneva one
    assert "Lausanne fair" in html and "{only" not in html
    assert "Geneva workshop" not in html and "Geneva parking" not in html
    assert delivery_project.cli("build", "2026-11", "--no-screenshots", "--now", NOW) == 0
    everything = (delivery_project.root / "build" / "2026-11" / "email.html").read_text(
        encoding="utf-8")
    assert all(t in everything for t in ("Geneva workshop", "Geneva parking", "Lausanne fair"))


def test_a_late_edition_gives_each_of_its_readers_their_own_variant(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script, capsys) -> None:
    write_draft(delivery_project)
    fr = write_draft(delivery_project, language="fr",
                     body="Bonjour.\n\n## Atelier de Genève {only=geneva}\n\nVenez.\n")
    fr.write_text(fr.read_text(encoding="utf-8").replace("status: ready", "status: draft"),
                  encoding="utf-8")
    write_readers(delivery_project, [("bea@example.com", "fr", "geneva"),
                                     ("cle@example.com", "fr", "")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    assert smtp_script.copies() == {"bea@example.com": 1, "cle@example.com": 1}  # in English
    fr.write_text(fr.read_text(encoding="utf-8").replace("status: draft", "status: ready"),
                  encoding="utf-8")
    capsys.readouterr()
    assert delivery_project.cli("send", "--now", LATER) == 0
    # Bea gets the late French edition with her section; for Clé it would be empty
    assert smtp_script.copies() == {"bea@example.com": 2, "cle@example.com": 1}
    late = smtp_script.parsed("bea@example.com")[1].get_body(("html",)).get_content()
    assert "Atelier de Genève" in late and "{only" not in late
    assert delivery_project.cli("status") == 0
    assert "segments: fr (everyone): 1 +geneva; 1 with no section for them (not sent)" in \
        capsys.readouterr().out


def test_audience_languages_take_readers_by_their_own_language(
        delivery_project: DeliveryProject, smtp_server: ScriptedServer,
        smtp_script: Script) -> None:
    write_draft(delivery_project, front="audience: {languages: [fr]}\n")
    write_readers(delivery_project, [("ana@example.com", "en", ""),
                                     ("bea@example.com", "fr-ca", ""),
                                     ("cle@example.com", "fr", "")])
    assert delivery_project.cli("send", "--now", NOW) == 0
    # no French edition: both French readers get the default one, the English reader nothing
    assert smtp_script.copies() == {"bea@example.com": 1, "cle@example.com": 1}


def test_check_leaves_out_a_forgotten_reader_still_in_the_csv(
        delivery_project: DeliveryProject, capsys) -> None:
    write_draft(delivery_project)
    write_readers(delivery_project, [("ana@example.com", "en", "geneva"),
                                     ("ben@example.com", "en", ""),
                                     ("cy@example.com", "en", "")])
    csv = str(delivery_project.root / "subscribers" / "sample.csv")
    assert delivery_project.cli("subscribers", "import", csv) == 0
    assert delivery_project.cli("subscribers", "forget", "cy@example.com") == 0
    capsys.readouterr()
    assert delivery_project.cli("check", "2026-11", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert "segments now: en (everyone): 1 plain, 1 +geneva" in out, out
