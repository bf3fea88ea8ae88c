"""XLIFF 2.0 round trip: export for translators, import their file, refuse what would break."""

from __future__ import annotations

import copy
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest_delivery import DeliveryProject, make_delivery_project
from sample_issues import SAMPLE_ISSUES
from translate.storage.placeables import StringElem
from translate.storage.xliff2 import Xliff2File

from newsletter.compose.translate import split_draft
from newsletter.compose.xliff_inline import Ph, Span
from newsletter.compose.xliff_segments import split_document

NOW = "2026-11-22T10:00"
NS = "urn:oasis:names:tc:xliff:document:2.0"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "s")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    project = make_delivery_project(tmp_path / "nl", 0)
    shutil.copy(SAMPLE_ISSUES / "2026-11.fr.items.yaml", project.root / "issues")
    return project


def sample_units(name: str) -> dict[str, tuple]:
    """The units of a shipped sample edition, by id (the samples share one structure)."""
    path = SAMPLE_ISSUES / name
    header, body = split_draft(path, path.read_text(encoding="utf-8"))
    subject = re.search(r'^subject: "(.*)"$', header, re.MULTILINE)[1]
    preheader = re.search(r'^preheader: "(.*)"$', header, re.MULTILINE)[1]
    return {u.id: u.content for u in split_document(subject, preheader, body).units}


def export(project: DeliveryProject, capsys, *args: str) -> Path:
    out = project.root / "fr.xlf"
    assert project.cli("translate", "export", "2026-11", "--lang", "fr", "--out", str(out),
                       *args) == 0
    assert f"wrote {out}: 46 units" in capsys.readouterr().out
    return out


def toolkit_rich(source: StringElem, nodes: tuple) -> StringElem:
    """nodes (a translation) as translate-toolkit placeables, reusing the source's codes."""
    codes = {}

    def collect(elem) -> None:  # noqa: ANN001
        for sub in getattr(elem, "sub", []):
            if getattr(sub, "id", None):
                codes[sub.id] = sub
            collect(sub)

    collect(source)

    def build(items: tuple) -> list:
        out = []
        for node in items:
            if isinstance(node, str):
                out.append(StringElem(node))
            else:
                code = copy.deepcopy(codes[node.code])
                code.sub = build(node.content) if isinstance(node, Span) else []
                out.append(code)
        return out

    return StringElem(build(nodes))


def fill_with_toolkit(path: Path, targets: dict[str, tuple]) -> None:
    """Translate every unit the way a CAT tool does: through translate-toolkit's XLIFF 2.0
    store (parse, set each target, serialise), never by editing our XML."""
    store = Xliff2File.parsestring(path.read_bytes())
    for unit in store.units:
        nodes = targets[unit.getid()]
        if any(isinstance(n, (Span, Ph)) for n in nodes):
            unit.rich_target = [toolkit_rich(unit.rich_source[0], nodes)]
        else:
            unit.target = "".join(nodes)
    path.write_bytes(bytes(store))


def test_translate_toolkit_round_trip_rebuilds_the_french_sample_and_checks_clean(
        project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, sample_units("2026-11.fr.md"))
    assert project.cli("translate", "import", str(xlf)) == 0
    assert "46 units, stored in the translation memory" in capsys.readouterr().out
    written = (project.root / "issues" / "2026-11.fr.md").read_text(encoding="utf-8")
    sample = (SAMPLE_ISSUES / "2026-11.fr.md").read_text(encoding="utf-8")
    assert written.split("\n---\n", 1)[1] == sample.split("\n---\n", 1)[1]
    assert 'subject: "Vous exportez bientôt\u00a0? Protégez votre marque' in written
    assert '"Free tools": "' in written  # translated_from, per section of the default
    assert 'status: "draft"' in written  # the translator's own decision makes it ready
    assert project.cli("check", "2026-11.fr", "--now", NOW) == 0
    out = capsys.readouterr().out
    assert "check 2026-11.fr.md: 0 error(s), 1 warning(s)" in out and "status is 'draft'" in out


def test_the_export_has_one_unit_per_piece_of_text_with_links_as_inline_codes(
        project: DeliveryProject, capsys) -> None:
    text = export(project, capsys).read_text(encoding="utf-8")
    assert f'<xliff xmlns="{NS}" version="2.0" srcLang="en" trgLang="fr">' in text
    ids = re.findall(r'<unit id="([^"]+)"', text)
    assert ids[:4] == ["subject", "preheader", "s0.p1", "s1.h1"]
    assert {"s1.li5", "s3.t1.r1.c2", "s3.t1.r7.c3", "s2.p3.alt1", "s4.li3"} <= set(ids)
    assert "s3.t1.r1.c1" not in ids  # the empty corner cell
    assert ('a future issue? <pc id="1" dataRefStart="d1a" dataRefEnd="d1b" '
            'type="link">Send it to the editorial team</pc>') in text
    assert '<data id="d1b">](https://ipbusiness.example.org/contact)</data>' in text
    assert 'subType="xlf:b">illustrative only</pc>' in text


def test_hand_written_xliff_in_the_oasis_shape_imports(project: DeliveryProject,
                                                      capsys) -> None:
    """A file written by hand from the spec's examples: other attribute order, no notes, no
    originalData, state final, <mrk> around a term."""
    issues = project.root / "issues"
    (issues / "2026-11.md").write_text(
        '---\nsubject: "Hello"\nstatus: ready\nsend_at: 2026-11-05T09:00\n---\n\n'
        "Read [the guide](https://example.org/guide) **today**.\n\n## Costs\n\n"
        "- About 1,800 EUR\n", encoding="utf-8")
    xlf = project.root / "de.xlf"
    xlf.write_text(f"""<?xml version="1.0"?>
<xliff version="2.0" xmlns="{NS}" srcLang="en" trgLang="de">
 <file id="f" original="2026-11.md">
  <unit id="subject"><segment state="final"><source>Hello</source>
   <target>Hallo</target></segment></unit>
  <unit id="s0.p1"><segment>
   <source>Read <pc id="1">the guide</pc> <pc id="2">today</pc>.</source>
   <target>Lesen Sie <pc id="2">heute</pc> <pc id="1"><mrk id="m1" type="term">den
 Leitfaden</mrk></pc>.</target></segment></unit>
  <unit id="s1.h1"><segment><source>Costs</source><target>Kosten</target></segment></unit>
  <unit id="s1.li1"><segment><source>About 1,800 EUR</source>
   <target>Etwa 1.800 EUR</target></segment></unit>
 </file>
</xliff>""", encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 2
    out = capsys.readouterr()
    assert "line break" in out.err  # the target's wrapped term is refused, named by unit
    xlf.write_text(xlf.read_text(encoding="utf-8").replace("den\n Leitfaden", "den Leitfaden"),
                   encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 0
    written = (issues / "2026-11.de.md").read_text(encoding="utf-8")
    assert 'subject: "Hallo"' in written
    assert ("Lesen Sie **heute** [den Leitfaden](https://example.org/guide).\n\n"
            "## Kosten\n\n- Etwa 1.800 EUR\n") in written


def refused(project: DeliveryProject, capsys, xlf: Path) -> list[str]:
    assert project.cli("translate", "import", str(xlf)) == 2
    assert not (project.root / "issues" / "2026-11.fr.md").exists()
    return [line for line in capsys.readouterr().err.splitlines() if "unit " in line]


def test_import_refuses_changed_urls_numbers_and_markup_naming_each_unit(
        project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    targets = sample_units("2026-11.fr.md")
    targets["s4.p2"] = ("Une question ? Écrivez à l'équipe.",)  # the link is gone
    targets["s2.p1"] = (targets["s2.p1"][0].replace("14", "15"),)
    targets["s1.li1"] = ("Voir https://evil.example/ pour les marques.",)
    targets["s0.p1"] = ("Bienvenue dans le **numéro** de novembre.",)
    targets["s3.t1.r3.c2"] = ("- 3",)
    fill_with_toolkit(xlf, targets)
    lines = refused(project, capsys, xlf)
    assert any("unit s4.p2: markup differs: the source has link 1, the target none" in line
               for line in lines)
    assert any("unit s2.p1: numbers differ: the source has 14, the target 15" in line
               for line in lines)
    assert any("unit s1.li1: URLs differ: the source has none, the target "
               "https://evil.example/" in line for line in lines)
    assert any("unit s0.p1: markup differs: '**numéro**'" in line for line in lines)
    assert any("unit s3.t1.r3.c2: markup differs: the target starts like" in line
               for line in lines)
    assert len(lines) == 5, lines


def test_numbers_may_change_script_and_grouping(project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    targets = sample_units("2026-11.fr.md")
    targets["s3.t1.r4.c2"] = ("environ ١٬٨٠٠ EUR",)  # Arabic-Indic digits, Arabic separator
    targets["s3.t1.r4.c3"] = ("环 1300 EUR",)
    fill_with_toolkit(xlf, targets)
    assert project.cli("translate", "import", str(xlf)) == 0, capsys.readouterr().err


def test_an_entity_declaration_is_refused(project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    text = xlf.read_text(encoding="utf-8")
    bomb = '<!DOCTYPE xliff [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n'
    xlf.write_text(text.replace("?>\n", "?>\n" + bomb, 1).replace("Welcome", "&b;"),
                   encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 2
    err = capsys.readouterr().err
    assert "a DTD or entity declaration is not allowed in XLIFF" in err
    assert "Traceback" not in err


def test_a_source_changed_since_the_export_and_a_hostile_original_are_refused(
        project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, sample_units("2026-11.fr.md"))
    default = project.root / "issues" / "2026-11.md"
    default.write_text(default.read_text(encoding="utf-8").replace("six employees",
                                                                   "seven employees"),
                       encoding="utf-8")
    assert any("unit s2.p1: the source differs from 2026-11.md" in line
               for line in refused(project, capsys, xlf))
    xlf.write_text(xlf.read_text(encoding="utf-8").replace(
        'original="2026-11.md"', 'original="../../../tmp/x.md"'), encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 2
    assert "<file original> '../../../tmp/x.md' is not an issue" in capsys.readouterr().err


def test_import_does_not_replace_a_translation_without_force(project: DeliveryProject,
                                                             capsys) -> None:
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, sample_units("2026-11.fr.md"))
    existing = project.root / "issues" / "2026-11.fr.md"
    existing.write_text("my own work\n", encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 2
    assert "pass --force" in capsys.readouterr().err
    assert existing.read_text(encoding="utf-8") == "my own work\n"
    assert project.cli("translate", "import", str(xlf), "--force") == 0


def test_an_import_never_carries_the_default_editions_approval_or_ready_status(
        project: DeliveryProject, capsys) -> None:
    default = project.root / "issues" / "2026-11.md"
    default.write_text(default.read_text(encoding="utf-8").replace(
        "status: ready\n", 'status: ready\napproved_by: "Ana Lima, 2026-11-02"\n', 1),
        encoding="utf-8")
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, sample_units("2026-11.fr.md"))
    assert project.cli("translate", "import", str(xlf)) == 0
    written = project.root / "issues" / "2026-11.fr.md"
    text = written.read_text(encoding="utf-8")
    assert "approved_by" not in text and 'status: "draft"' in text
    # The translation's own reviewer signs it; a later --force import keeps that sign-off.
    written.write_text(text.replace('status: "draft"', 'status: ready\napproved_by:\n'
                                    '  name: "Luc Martin"\n  date: 2026-11-03'), encoding="utf-8")
    assert project.cli("translate", "import", str(xlf), "--force") == 0
    again = written.read_text(encoding="utf-8")
    assert "status: ready" in again and 'name: "Luc Martin"' in again
    assert "Ana Lima" not in again


def test_the_translation_memory_prefills_identical_sources_in_a_later_issue(
        project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, sample_units("2026-11.fr.md"))
    assert project.cli("translate", "import", str(xlf)) == 0
    with sqlite3.connect(project.db) as conn:
        assert conn.execute("SELECT count(*), min(issue) FROM translation_memory WHERE "
                            "source_language = 'en' AND target_language = 'fr'"
                            ).fetchone() == (46, "2026-11")
    december = project.root / "issues" / "2026-12.md"
    december.write_text(
        '---\nsubject: "December"\nstatus: draft\n---\n\n## Free tools\n\n'
        "A sentence no one has translated yet.\n\n"
        "- [Collective marks starter kit](https://ipbusiness.example.org/other-address) "
        "includes model usage rules and a checklist for producer groups that want to share "
        "a mark.\n", encoding="utf-8")
    out = project.root / "dec.xlf"
    assert project.cli("translate", "export", "2026-12", "--lang", "fr", "--out", str(out)) == 0
    assert "4 units, 2 pre-filled from the translation memory" in capsys.readouterr().out
    store = Xliff2File.parsestring(out.read_bytes())
    units = {u.getid(): u for u in store.units}
    assert units["s1.h1"].target == "Outils gratuits"
    assert units["s1.li1"].target.startswith("Le kit de démarrage sur les marques collectives")
    assert units["s1.li1"].xmlelement.get("state") == "translated"
    assert not units["s1.p1"].target and units["s1.p1"].xmlelement.get("state") == "initial"
    text = out.read_text(encoding="utf-8")
    assert "](https://ipbusiness.example.org/other-address)</data>" in text
    assert project.cli("translate", "export", "2026-12", "--lang", "es", "--out",
                       str(out)) == 0
    assert "0 pre-filled" in capsys.readouterr().out  # memories are per language pair


def test_bad_arguments_are_one_line_errors(project: DeliveryProject, capsys) -> None:
    assert project.cli("translate", "export", "2026-11", "--lang", "en") == 2
    assert project.cli("translate", "export", "2026-11.fr", "--lang", "de") == 2
    assert project.cli("translate", "import", str(project.root / "missing.xlf")) == 2
    (project.root / "junk.xlf").write_text("<xliff", encoding="utf-8")
    assert project.cli("translate", "import", str(project.root / "junk.xlf")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not well-formed XML" in err


def test_targets_that_would_change_the_markdown_are_refused_and_spaces_are_trimmed(
        project: DeliveryProject, capsys) -> None:
    xlf = export(project, capsys)
    targets = sample_units("2026-11.fr.md")
    targets["s0.p1"] = ("Bonjour {{ name }}.",)
    targets["s1.p2"] = ("---",)
    targets["s1.p1"] = ("        " + targets["s1.p1"][0] + "   ",)  # would be a code block
    fill_with_toolkit(xlf, targets)
    lines = refused(project, capsys, xlf)
    assert any("unit s0.p1: markup differs: template syntax '{{' in the target" in line
               for line in lines)
    assert any("unit s1.p2: markup differs: the target starts like" in line for line in lines)
    assert len(lines) == 2, lines
    xlf.write_text(xlf.read_text(encoding="utf-8").replace(
        "<target>Bonjour {{ name }}.</target>", "<target>Bonjour <sc id=\"9\"/>.</target>"),
        encoding="utf-8")
    assert project.cli("translate", "import", str(xlf)) == 2
    assert f"{xlf}: unit s0.p1: <sc> is not supported" in capsys.readouterr().err
    xlf = export(project, capsys)
    fill_with_toolkit(xlf, {**sample_units("2026-11.fr.md"), "s1.p1": targets["s1.p1"]})
    assert project.cli("translate", "import", str(xlf)) == 0, capsys.readouterr().err
    written = (project.root / "issues" / "2026-11.fr.md").read_text(encoding="utf-8")
    assert "\n\nVos droits de marque" in written and "        Vos" not in written


RICH_BODY = """Intro with `code`, an *italic* word, a \\*literal star\\* and <https://example.org/a>.

## Notes

### A smaller heading

> A quoted line
> that goes on.

1. First, see ![a logo](https://example.org/logo.png) here.
2. Second [link **bold**](https://example.org/b "title").
   - nested item

```
## not a heading, not translated
```

<div>raw block</div>

---

| Left | Right |
|:-----|------:|
| a \\| b | _c_ |
"""


def test_richer_markdown_survives_the_unit_split_and_codes_are_where_expected() -> None:
    doc = split_document("S", "", RICH_BODY)
    from newsletter.compose.xliff_segments import render_body

    assert render_body(doc, {u.id: u.content for u in doc.units}) == \
        RICH_BODY.replace("> A quoted line\n> that goes on.", "> A quoted line that goes on.")
    units = {u.id: u for u in doc.units}
    assert [c.type for c in units["s0.p1"].codes] == ["other", "fmt", "other", "other", "other"]
    assert units["s1.li1"].codes[0].alt_unit == "s1.li1.alt1"
    assert units["s1.li1.alt1"].content == ("a logo",)
    assert units["s1.li2"].codes[0].end == '](https://example.org/b "title")'
    assert "s1.li3" in units and "s1.h2" in units and "s1.q1" in units
    assert not any("not a heading" in str(u.content) or "raw block" in str(u.content)
                   for u in doc.units)
