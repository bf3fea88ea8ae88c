"""A translation ready after the issue went out reaches the readers who got another edition,
once each; nobody else, and not after the month."""

from __future__ import annotations

import sqlite3

from smtp_server import Script, ScriptedServer
from test_editions import multilingual, translate  # noqa: F401 - fixture and helper

NOW = "2026-11-22T10:00"
LATER = "2026-11-25T10:00"
MONTH_AFTER = "2026-12-24T10:00"


def send(project, monkeypatch, now: str, code: int = 0) -> Script:  # noqa: ANN001
    script = Script()
    with ScriptedServer(script) as server:
        monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
        assert project.cli("send", "--now", now) == code
    return script


def languages_of(script: Script) -> dict[str, str]:
    return {rcpt.lower(): m["Content-Language"] for rcpt, _ in script.messages
            for m in script.parsed(rcpt)}


def test_a_late_edition_goes_once_to_the_readers_who_got_the_default(
        multilingual, monkeypatch, capsys):  # noqa: F811
    first = send(multilingual, monkeypatch, NOW)
    spanish = sorted(a for a in multilingual.addresses if ".es@" in a)
    assert {languages_of(first)[a] for a in spanish} == {"en"}  # no es edition yet
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    capsys.readouterr()
    second = send(multilingual, monkeypatch, LATER)
    assert sorted(second.copies()) == spanish
    assert set(second.copies().values()) == {1}
    assert {m["Content-Language"] for a in spanish for m in second.parsed(a)} == {"es"}
    assert all(m["Subject"] == "¿Exporta pronto? Proteja su marca"
               for a in spanish for m in second.parsed(a))
    assert "late 'es' edition frozen, 2 reader(s)" in capsys.readouterr().out
    assert send(multilingual, monkeypatch, LATER).messages == []  # exactly once
    conn = sqlite3.connect(multilingual.root / "newsletter.db")
    rows = conn.execute("SELECT issue, state, count(*) FROM deliveries GROUP BY issue, state")
    assert sorted(rows) == [("2026-11", "sent", 10), ("2026-11+es", "sent", 2)]


def test_a_translation_ready_after_the_month_is_not_sent(multilingual, monkeypatch):  # noqa: F811
    send(multilingual, monkeypatch, NOW)
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    assert send(multilingual, monkeypatch, MONTH_AFTER).messages == []


def test_a_reader_who_joined_after_the_issue_gets_no_late_edition(
        multilingual, monkeypatch):  # noqa: F811
    send(multilingual, monkeypatch, NOW)
    multilingual.cli("subscribers", "add", "nuevo@example.com", "--language", "es")
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    later = send(multilingual, monkeypatch, LATER)
    assert "nuevo@example.com" not in later.copies()
    assert len(later.messages) == 2


def test_a_late_edition_with_an_error_is_held_and_the_run_goes_on(
        multilingual, monkeypatch, capsys):  # noqa: F811
    send(multilingual, monkeypatch, NOW)
    path = translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    path.write_text(path.read_text(encoding="utf-8") + "\n[a link](javascript:alert(1))\n",
                    encoding="utf-8")
    capsys.readouterr()
    assert send(multilingual, monkeypatch, LATER, code=1).messages == []  # the operator looks
    assert "2026-11 (es): late edition held:" in capsys.readouterr().err


NOTE_ES = "Este número aún no está disponible en su idioma."


def test_the_default_edition_tells_such_a_reader_so_in_their_language(
        multilingual, monkeypatch):  # noqa: F811
    first = send(multilingual, monkeypatch, NOW)
    spanish = next(a for a in multilingual.addresses if ".es@" in a)
    english = next(a for a in multilingual.addresses if ".en@" in a)
    french = next(a for a in multilingual.addresses if ".fr@" in a)
    (message,) = first.parsed(spanish)
    assert NOTE_ES in message.get_body(("html",)).get_content()
    assert NOTE_ES in message.get_body(("plain",)).get_content()
    for other in (english, french):  # the reader's own edition: no note
        (got,) = first.parsed(other)
        body = got.get_body(("html",)).get_content() + got.get_body(("plain",)).get_content()
        assert "__NL_" not in body and "pas encore disponible" not in body
        assert "not yet available" not in body
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    (late,) = send(multilingual, monkeypatch, LATER).parsed(spanish)
    assert NOTE_ES not in late.get_body(("html",)).get_content()


def test_status_says_get_while_rows_are_open_and_names_a_late_edition(
        multilingual, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", "smtp://127.0.0.1:9")  # nothing listens: 4xx
    multilingual.cli("send", "--now", NOW)
    capsys.readouterr()
    multilingual.cli("status")
    out = capsys.readouterr().out
    assert "subscriber(s) in 'es' get the 'en' edition" in out and " got " not in out
    send(multilingual, monkeypatch, "2026-11-22T10:30")  # the retries, now the relay answers
    translate(multilingual, "es", "¿Exporta pronto? Proteja su marca")
    send(multilingual, monkeypatch, LATER)
    capsys.readouterr()
    multilingual.cli("status")
    out = capsys.readouterr().out
    assert "subscriber(s) in 'es' got the 'en' edition" in out
    assert "2026-11+es (late 'es' edition): 2 subscriber(s): sent 2" in out
