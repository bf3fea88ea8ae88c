"""Subscriber lists: reading the editors' CSV files, the subscribers table, and the CLI."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.audience.subscribers import read_csv
from newsletter.cli.main import main
from newsletter.errors import InputError
from newsletter.model import Subscriber
from newsletter.store import subscribers as store_subscribers
from newsletter.store.connect import open_store

HEADER = "email,name,language,tags\r\n"

CONFIG = """\
[newsletter]
name = "IP for Business"
from = "IP for Business <newsletter@ipbusiness.example.org>"
reply_to = "sme-team@ipbusiness.example.org"
base_url = "https://ipbusiness.example.org/newsletter"
list_id = "ip-for-business.ipbusiness.example.org"
default_language = "en"
timezone = "Europe/Zurich"
postal_address = "IP for Business, 34 chemin des Colombettes, 1211 Geneva 20, Switzerland"

[store]
path = "t.db"
"""


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture()
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_store(tmp_path / "t.db")
    yield connection
    connection.close()


@pytest.fixture()
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def run(cfg: Path, *args: str) -> int:
    return main(["--config", str(cfg), "subscribers", *args])


def by_email(parsed) -> dict[str, Subscriber]:  # noqa: ANN001 - a ParsedList
    return {s.email: s for s in parsed.subscribers}


# --- reading CSV files --------------------------------------------------------------------------


def test_utf8_with_bom_reads_the_first_header_as_email(tmp_path):
    path = write_csv(tmp_path / "bom.csv", "\ufeffemail,name\r\nzoe@example.org,Zoë Müller\r\n")

    parsed = read_csv(path)

    assert parsed.rejected == ()
    assert by_email(parsed)["zoe@example.org"].name == "Zoë Müller"


def test_quoted_newline_inside_a_name_becomes_one_line(tmp_path):
    path = write_csv(tmp_path / "l.csv", HEADER + 'ann@example.org,"Ann\r\nLee",en,\r\n')

    parsed = read_csv(path)

    assert by_email(parsed)["ann@example.org"].name == "Ann Lee"


def test_excel_export_in_cp1252_with_semicolons_and_header_aliases(tmp_path):
    text = "E-mail;Name;Language\r\nzoe@example.org;Zoë Müller;de\r\nfr@example.org;François;fr\r\n"
    path = write_csv(tmp_path / "excel.csv", text, encoding="cp1252")

    parsed = read_csv(path)

    assert parsed.rejected == ()
    subs = by_email(parsed)
    assert (subs["zoe@example.org"].name, subs["zoe@example.org"].language) == ("Zoë Müller", "de")
    assert subs["fr@example.org"].name == "François"


def test_blank_lines_are_ignored_and_the_default_language_applies(tmp_path):
    path = write_csv(tmp_path / "b.csv",
                     HEADER + "\r\na@example.org,A,,\r\n,,,\r\n  \r\nb@example.org,B,,\r\n\r\n")

    parsed = read_csv(path, default_language="fr")

    assert parsed.rejected == ()
    assert [(s.email, s.language) for s in parsed.subscribers] == [
        ("a@example.org", "fr"), ("b@example.org", "fr")]


def test_a_file_without_an_email_column_is_refused_naming_the_file(tmp_path):
    path = write_csv(tmp_path / "noemail.csv", "name,language\r\nAnn,en\r\n")

    with pytest.raises(InputError) as caught:
        read_csv(path)

    assert str(caught.value).startswith(f"{path}: line 1: no 'email' column")


def test_an_unclosed_quote_swallowing_a_big_file_is_an_input_error_not_a_crash(tmp_path):
    path = write_csv(tmp_path / "q.csv", HEADER + 'a@example.org,"Ann\r\n' + "x" * 200_000 + "\r\n")

    with pytest.raises(InputError) as caught:
        read_csv(path)

    assert str(caught.value).startswith(f"{path}: line 2: field larger than field limit")


# The physical line numbers of the file below: a quoted name spans lines 2-3, so every
# rejected row after it must still be reported at its own line.
REJECTS = (
    HEADER                                                    # 1
    + 'ann@example.org,"Ann\r\nLee",en,\r\n'                  # 2-3
    + "two@@example.org,Two,,\r\n"                            # 4
    + ",Nobody,,\r\n"                                         # 5
    + "\r\n"                                                  # 6
    + '"=HYPERLINK(""http://evil.example/"",""x"")",F,,\r\n'  # 7
    + "ew@example.org,=?UTF-8?Q?=0A?=,,\r\n"                  # 8
    + "lang@example.org,L,english!,\r\n"                      # 9
    + 'multi@example.org,"spans\r\nthree\r\nlines",xx_yy_zz,\r\n'  # 10-12
    + "ok@example.org,OK,,\r\n"                               # 13
)


def test_rejected_rows_are_reported_at_their_physical_line_and_the_rest_import(tmp_path):
    path = write_csv(tmp_path / "r.csv", REJECTS)

    parsed = read_csv(path)

    assert [str(r).split(": ", 1)[0] for r in parsed.rejected] == [
        f"{path}:{n}" for n in (4, 5, 7, 8, 9, 10)]
    reasons = [r.reason for r in parsed.rejected]
    assert "'two@@example.org' is not a valid address" in reasons[0]
    assert reasons[1].startswith("'' is not a valid address")
    assert reasons[2].startswith("'=HYPERLINK(") and "spreadsheet formula" in reasons[2]
    assert reasons[3] == "name contains an RFC 2047 encoded word (=?...?=)"
    assert reasons[4] == "language 'english!' is not a language code like 'en' or 'fr'"
    assert reasons[5].startswith("language 'xx_yy_zz' is not a language code")
    assert sorted(by_email(parsed)) == ["ann@example.org", "ok@example.org"]


@pytest.mark.parametrize("raw, clean", [
    ("Ann\rLee", "Ann Lee"),
    ("Ann\nLee", "Ann Lee"),
    ("Ann\r\n\r\nLee", "Ann Lee"),
    ("\u202eAnn\u202c Lee", "Ann Lee"),  # bidi override (Trojan Source)
    ("Ann\u2066 Lee\u2069", "Ann Lee"),
    ("Ann\tLee\x0b", "Ann Lee"),
])
def test_names_are_cleaned_to_one_line_without_control_or_bidi_characters(tmp_path, raw, clean):
    path = write_csv(tmp_path / "n.csv", HEADER + f'ann@example.org,"{raw}",,\r\n')

    parsed = read_csv(path)

    assert parsed.rejected == ()
    assert by_email(parsed)["ann@example.org"].name == clean


def test_duplicates_differing_in_case_merge_into_one_subscriber_with_tags_unioned(tmp_path):
    path = write_csv(tmp_path / "d.csv", HEADER
                     + "ann@Example.ORG,Ann,en,news;events\r\n"
                     + "ANN@example.org,,en,Patents|news\r\n"
                     + "ann@EXAMPLE.org,Someone Else,en,\r\n")

    parsed = read_csv(path)

    assert parsed.merged == 2
    assert len(parsed.subscribers) == 1
    ann = parsed.subscribers[0]
    assert ann.email == "ann@example.org"  # the domain lower-cased; the first spelling kept
    assert ann.name == "Ann"
    assert ann.tags == ("events", "news", "patents")


def test_idn_domains_are_stored_in_ascii(tmp_path, conn):
    path = write_csv(tmp_path / "idn.csv", HEADER + "info@Bücher.example,Buch,de,\r\n")

    parsed = read_csv(path)
    store_subscribers.upsert_subscribers(conn, parsed.subscribers)

    assert [s.email for s in store_subscribers.iter_subscribers(conn)] == [
        "info@xn--bcher-kva.example"]


def test_a_non_ascii_local_part_is_rejected_rather_than_mangled(tmp_path):
    path = write_csv(tmp_path / "u.csv", HEADER + "zoë@example.org,Zoë,,\r\n")

    parsed = read_csv(path)

    assert parsed.subscribers == ()
    assert str(parsed.rejected[0]).startswith(f"{path}:2: 'zoë@example.org' is not a valid")


# --- the subscribers table ----------------------------------------------------------------------


def test_import_is_idempotent(tmp_path, conn):
    path = write_csv(tmp_path / "s.csv",
                     HEADER + "a@example.org,A,en,x;y\r\nb@example.org,B,fr,\r\n")

    first = store_subscribers.upsert_subscribers(conn, read_csv(path).subscribers)
    second = store_subscribers.upsert_subscribers(conn, read_csv(path).subscribers)

    assert first == (2, 0)
    assert second == (0, 0)
    assert store_subscribers.subscriber_counts(conn) == {"active": 2}


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained"])
def test_import_never_reactivates_an_address_but_still_updates_its_name(tmp_path, conn, status):
    store_subscribers.upsert_subscribers(conn, read_csv(write_csv(
        tmp_path / "v1.csv", HEADER + "ann@example.org,Ann,en,\r\n")).subscribers)
    assert store_subscribers.set_status(conn, "ann@example.org", status, "from the test")

    added, updated = store_subscribers.upsert_subscribers(conn, read_csv(write_csv(
        tmp_path / "v2.csv", HEADER + "ANN@Example.org,Ann Lee,en,\r\n")).subscribers)

    ann = store_subscribers.get_subscriber(conn, "ann@example.org")
    assert (added, updated) == (0, 1)
    assert (ann.status, ann.reason, ann.name) == (status, "from the test", "Ann Lee")
    assert store_subscribers.subscriber_counts(conn) == {status: 1}


def test_set_status_reports_whether_the_address_exists(conn):
    store_subscribers.upsert_subscribers(conn, [Subscriber("a@example.org")])

    assert store_subscribers.set_status(conn, "A@EXAMPLE.ORG", "bounced",
                                        "550 no such user") is True
    assert store_subscribers.set_status(conn, "nobody@example.org", "bounced") is False
    assert store_subscribers.get_subscriber(conn, "a@example.org").status == "bounced"
    assert store_subscribers.get_subscriber(conn, "nobody@example.org") is None


def test_iter_subscribers_streams_every_row_once_in_id_order_a_page_at_a_time(conn):
    emails = [f"s{i}@example.org" for i in (5, 3, 1, 4, 2)]
    store_subscribers.upsert_subscribers(conn, [Subscriber(e) for e in emails])
    selects: list[str] = []
    conn.trace(lambda sql: selects.append(sql) if sql.startswith("SELECT") else None)

    got = list(store_subscribers.iter_subscribers(conn, page=2))

    conn.trace(None)
    assert [s.email for s in got] == emails  # insertion order is id order
    assert [s.id for s in got] == sorted(s.id for s in got)
    assert len(selects) == 4  # pages of 2, 2 and 1 row, then an empty page ends it


def test_iter_subscribers_filters_by_status_across_pages(conn):
    store_subscribers.upsert_subscribers(conn,
                                         [Subscriber(f"s{i}@example.org") for i in range(1, 8)])
    for i in (2, 3, 6):
        store_subscribers.set_status(conn, f"s{i}@example.org", "unsubscribed")

    active = [s.email for s in store_subscribers.iter_subscribers(conn, "active", page=2)]
    gone = [s.email for s in store_subscribers.iter_subscribers(conn, "unsubscribed", page=2)]

    assert active == ["s1@example.org", "s4@example.org", "s5@example.org", "s7@example.org"]
    assert gone == ["s2@example.org", "s3@example.org", "s6@example.org"]


# --- the command line ---------------------------------------------------------------------------


def test_cli_import_prints_a_summary_and_exits_0_when_nothing_was_rejected(tmp_path, cfg, capsys):
    path = write_csv(tmp_path / "good.csv", HEADER + "a@example.org,A,,\r\nA@example.org,,,\r\n"
                     + "b@example.org,B,,\r\n")

    assert run(cfg, "import", str(path)) == 0

    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{path}: 2 address(es), 2 new, 0 updated, 1 duplicate row(s) merged, 0 rejected",
        "imported: 2 new, 0 updated, 0 rejected",
    ]


def test_cli_import_twice_reports_nothing_new(tmp_path, cfg, capsys):
    path = write_csv(tmp_path / "good.csv", HEADER + "a@example.org,A,,\r\n")
    run(cfg, "import", str(path))
    capsys.readouterr()

    assert run(cfg, "import", str(path)) == 0

    assert capsys.readouterr().out.splitlines()[-1] == "imported: 0 new, 0 updated, 0 rejected"


def test_cli_import_of_an_edited_file_says_how_many_rows_it_did_not_read_again(
        tmp_path, cfg, capsys):
    path = write_csv(tmp_path / "e.csv", HEADER + "a@example.org,A,,\r\nb@example.org,B,,\r\n")
    run(cfg, "import", str(path))
    write_csv(path, HEADER + "a@example.org,A,,\r\nb@example.org,Bea,,\r\n")
    capsys.readouterr()

    assert run(cfg, "import", str(path)) == 0

    assert capsys.readouterr().out.splitlines()[0] == (
        f"{path}: 2 address(es), 0 new, 1 updated, 0 duplicate row(s) merged, 0 rejected; "
        "1 row(s) unchanged since the last import")


def test_cli_import_exits_2_and_names_each_rejected_row(tmp_path, cfg, capsys):
    path = write_csv(tmp_path / "r.csv", REJECTS)

    assert run(cfg, "import", str(path)) == 2

    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "imported: 2 new, 0 updated, 6 rejected"
    warnings = captured.err.splitlines()
    assert len(warnings) == 6
    assert warnings[0].startswith(f"newsletter: warning: {path}:4: 'two@@example.org' is not")
    assert warnings[2].startswith(f"newsletter: warning: {path}:7: '=HYPERLINK(")
    conn = open_store(tmp_path / "t.db")
    assert sorted(s.email for s in store_subscribers.iter_subscribers(conn)) == [
        "ann@example.org", "ok@example.org"]
    conn.close()


def test_cli_import_of_a_missing_file_exits_2_naming_it(tmp_path, cfg, capsys):
    missing = tmp_path / "missing.csv"

    assert run(cfg, "import", str(missing)) == 2

    assert capsys.readouterr().err.startswith(f"newsletter: {missing}: cannot read:")


def test_cli_add_then_remove_unsubscribes(tmp_path, cfg, capsys):
    assert run(cfg, "add", "Zoe@Example.ORG", "--name", "Zoë Müller", "--language", "de") == 0
    assert capsys.readouterr().out == "Zoe@example.org: active\n"

    assert run(cfg, "remove", "zoe@example.org") == 0
    assert capsys.readouterr().out == "zoe@example.org: unsubscribed\n"

    conn = open_store(tmp_path / "t.db")
    zoe = store_subscribers.get_subscriber(conn, "zoe@example.org")
    conn.close()
    assert (zoe.name, zoe.language, zoe.status) == ("Zoë Müller", "de", "unsubscribed")


def test_cli_add_does_not_reactivate_a_removed_address(cfg, capsys):
    run(cfg, "add", "zoe@example.org")
    run(cfg, "remove", "zoe@example.org")
    capsys.readouterr()

    assert run(cfg, "add", "zoe@example.org") == 0

    assert capsys.readouterr().out.startswith("zoe@example.org: unsubscribed; not re-activated")


def test_cli_add_refuses_an_invalid_address_with_a_message(cfg, capsys):
    assert run(cfg, "add", "not-an-address") == 2

    assert capsys.readouterr().err.startswith(
        "newsletter: 'not-an-address' is not a valid address")


def test_cli_remove_of_an_unknown_address_exits_2_naming_it(cfg, capsys):
    run(cfg, "add", "zoe@example.org")
    capsys.readouterr()

    assert run(cfg, "remove", "Nobody@Example.org") == 2

    assert capsys.readouterr().err == "newsletter: Nobody@example.org is not on the list\n"


def test_cli_list_shows_subscribers_and_counts_by_status(cfg, capsys):
    for address in ("a@example.org", "b@example.org", "c@example.org"):
        run(cfg, "add", address, "--name", address[0].upper())
    run(cfg, "remove", "b@example.org")
    capsys.readouterr()

    assert run(cfg, "list") == 0

    assert capsys.readouterr().out.splitlines() == [
        "a@example.org\tA\ten\tactive",
        "b@example.org\tB\ten\tunsubscribed  (removed by an editor)",
        "c@example.org\tC\ten\tactive",
        "total 3: active 2, unsubscribed 1",
    ]


def test_cli_list_with_status_shows_only_that_status(cfg, capsys):
    for address in ("a@example.org", "b@example.org", "c@example.org"):
        run(cfg, "add", address)
    run(cfg, "remove", "c@example.org")
    capsys.readouterr()

    assert run(cfg, "list", "--status", "unsubscribed") == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines[:-1]] == ["c@example.org"]
    assert lines[-1] == "total 3: active 2, unsubscribed 1"


def test_cli_list_with_an_unknown_status_exits_2(cfg, capsys):
    assert run(cfg, "list", "--status", "gone") == 2

    assert "--status must be one of active, pending, unsubscribed" in capsys.readouterr().err


def test_cli_list_of_an_empty_database_says_none(cfg, capsys):
    assert run(cfg, "list") == 0

    assert capsys.readouterr().out == "total 0: none\n"


def test_cli_export_writes_every_subscriber_and_neutralises_formulas(tmp_path, cfg, capsys):
    run(cfg, "add", "a@example.org", "--name", "=HYPERLINK(\"http://evil.example/\")")
    run(cfg, "add", "b@example.org", "--name", "Zoë, \"the\" Müller", "--language", "de")
    run(cfg, "remove", "b@example.org")
    out = tmp_path / "export.csv"
    capsys.readouterr()

    assert run(cfg, "export", str(out)) == 0

    assert capsys.readouterr().out == f"exported 2 subscriber(s) to {out}\n"
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["email", "name", "language", "tags", "status"]
    assert [(r["email"], r["name"], r["language"], r["status"]) for r in rows] == [
        ("a@example.org", "'=HYPERLINK(\"http://evil.example/\")", "en", "active"),
        ("b@example.org", "Zoë, \"the\" Müller", "de", "unsubscribed"),
    ]


def test_an_exported_file_imports_again_without_changing_anything(tmp_path, cfg, capsys):
    source = write_csv(tmp_path / "s.csv", HEADER + "a@example.org,Ann,en,news;events\r\n"
                       + "b@bücher.example,\"Lee, Bo\",fr,\r\n")
    run(cfg, "import", str(source))
    out = tmp_path / "export.csv"
    run(cfg, "export", str(out))
    capsys.readouterr()

    assert run(cfg, "import", str(out)) == 0

    assert capsys.readouterr().out.splitlines()[-1] == "imported: 0 new, 0 updated, 0 rejected"


# --- export: no cell is a formula, whatever the separator -------------------------------------

TRIGGERS = tuple("=+-@\t\r＝＋－＠")
HOSTILE = [
    Subscriber("bob@example.org", "Bob;=1+1", "en", ("=cmd", "news")),
    Subscriber("eve@example.org", "x,@SUM(A1:A9)", "fr", ("+c", "b")),
    Subscriber("ann@example.org", "Ann;\"=HYPERLINK(\"http://evil.example\")", "en"),
    Subscriber("zed@example.org", "＝1+1;－2", "de", ("＠x",)),
    Subscriber("olga@example.org", "'=already quoted; '-twice", "en"),
    Subscriber("max@example.org", "+41 44 123 45 67", "en", (), "unsubscribed",
               "550 5.1.1 no such user;-bounced"),
]


def _naive_fields(data: str) -> Iterator[str]:
    """Every field a spreadsheet that splits on , or ; or TAB (ignoring quotes) would see."""
    for separator in (",", ";", "\t"):
        for line in data.replace("\r", "\n").split("\n"):
            yield from line.split(separator)


def test_no_exported_field_starts_a_formula_under_any_separator(tmp_path):
    from newsletter.audience.csv_export import write_export

    out = tmp_path / "export.csv"
    assert write_export(out, HOSTILE, root=tmp_path) == len(HOSTILE)

    data = out.read_text(encoding="utf-8")
    fields = list(_naive_fields(data))
    assert len(fields) > 6 * (len(HOSTILE) + 1)
    bad = [f for f in fields if f.lstrip(' "').startswith(TRIGGERS)]
    assert bad == []
    # every cell is quoted: a spreadsheet that does parse quotes sees whole cells
    for line in data.strip("\r\n").split("\r\n"):
        assert line.startswith('"') and line.endswith('"') and line.count('","') >= 5


def test_an_export_imports_back_to_the_same_names_and_tags(tmp_path):
    from newsletter.audience.csv_export import write_export

    out = tmp_path / "export.csv"
    write_export(out, HOSTILE, root=tmp_path)

    parsed = read_csv(out)

    assert parsed.rejected == ()
    back = {s.email: (s.name, s.language, s.tags) for s in parsed.subscribers}
    assert back == {s.email: (s.name, s.language, s.tags) for s in HOSTILE}


def test_the_export_file_is_owner_only_and_never_written_through_a_link(tmp_path):
    import os
    import stat

    from newsletter.audience.csv_export import write_export
    from newsletter.safe_files import LinkRefused

    out = tmp_path / "export.csv"
    write_export(out, HOSTILE, root=tmp_path)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link = tmp_path / "planted.csv"
    link.symlink_to(victim)
    with pytest.raises(LinkRefused):
        write_export(link, HOSTILE, root=tmp_path)
    assert victim.read_text() == "keep\n"


@settings(max_examples=500, deadline=None)
@given(value=st.text(alphabet=st.sampled_from("=+-@\t\r\n,;\"' ＝＋－＠ab")
                     | st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_a_guarded_cell_is_never_a_formula_and_unguards_to_itself(value):
    from newsletter.audience.csv_export import export_cell, unguard_cell

    guarded = export_cell(value)
    assert unguard_cell(guarded) == value
    assert not any(f.lstrip(' "').startswith(TRIGGERS) for f in _naive_fields(guarded))


def test_a_language_written_as_its_name_is_read_as_its_code(tmp_path):
    from newsletter.audience.subscribers import read_csv

    path = tmp_path / "names.csv"
    path.write_text("email,language\na@example.org,English\nb@example.org,français\n"
                    "c@example.org,Español\nd@example.org,العربية\ne@example.org,中文\n"
                    "f@example.org,Русский\ng@example.org,Chinese\n", encoding="utf-8")
    parsed = read_csv(path)
    assert [s.language for s in parsed.subscribers] == ["en", "fr", "es", "ar", "zh", "ru", "zh"]
    assert parsed.rejected == ()


def test_a_duplicate_in_another_case_says_which_line_was_kept(tmp_path):
    from newsletter.audience.subscribers import read_csv

    path = tmp_path / "dupes.csv"
    path.write_text("email,name,tags\nAnn.Lee@example.org,Ann,a\nann.lee@example.org,,b\n",
                    encoding="utf-8")
    parsed = read_csv(path)
    assert parsed.merged == 1 and parsed.subscribers[0].tags == ("a", "b")
    assert parsed.notes == (f"{path}:3: Ann.Lee@example.org (as ann.lee@example.org) is also on "
                            "line 2: line 2 is kept, with the tags of both",)
