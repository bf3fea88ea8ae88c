"""Time faults: send_at in other zones and across daylight-saving changes, the December ->
January rollover, the clock stepping back between runs, and bounded retries of deferrals.

`send --now ISO` is the clock. Mail goes to a real SMTP server (aiosmtpd on 127.0.0.1), the
ledger is the real SQLite file, feeds are served over local HTTP. newsletter.toml's zone is
Europe/Zurich throughout. Each case adds a row to the fault table (tests/faults_table.py).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Project, make_atom, make_rss
from conftest_delivery import DeliveryProject, make_delivery_project
from faults_table import record
from smtp_server import Script, ScriptedServer

from newsletter.compose.snapshot import read_snapshot

SAMPLE_SEND_AT = "send_at: 2026-11-05T09:00"


@pytest.fixture
def project_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """make(issue, send_at): the sample issue renamed to ISSUE and scheduled at SEND_AT (as
    written in the draft's front matter), three subscribers, and nothing else to send."""
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")

    def make(issue: str, send_at: str) -> DeliveryProject:
        project = make_delivery_project(tmp_path / "nl", 3)
        issues = project.root / "issues"
        draft = (issues / "2026-11.md").read_text(encoding="utf-8")
        snapshot = (issues / "2026-11.items.yaml").read_text(encoding="utf-8")
        assert SAMPLE_SEND_AT in draft
        (issues / "2026-11.md").unlink()
        (issues / "2026-11.items.yaml").unlink()
        (issues / f"{issue}.md").write_text(
            draft.replace(SAMPLE_SEND_AT, f"send_at: {send_at}"), encoding="utf-8")
        (issues / f"{issue}.items.yaml").write_text(
            snapshot.replace("issue: 2026-11", f"issue: {issue}"), encoding="utf-8")
        return project

    return make


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    srv = ScriptedServer(Script())
    srv.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", srv.url)
    yield srv
    srv.stop()


def copies_per_address(project: DeliveryProject, script: Script) -> str:
    counts = [script.copies()[a] for a in project.addresses]
    return f"{counts.count(1)} x1, {counts.count(0)} x0, {sum(c > 1 for c in counts)} x2+"


def run_send(project: DeliveryProject, now: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    capsys.readouterr()
    code = project.cli("send", "--now", now)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out


# --- send_at in other zones --------------------------------------------------------------------


def test_send_at_with_an_offset_is_due_at_that_instant_whatever_the_configured_zone(
        project_at, server: ScriptedServer, capsys: pytest.CaptureFixture) -> None:
    """09:00 at UTC-05:00 is 14:00 UTC, i.e. 15:00 in Zurich (CET): the offset written in the
    draft wins over newsletter.toml's zone."""
    project = project_at("2026-11", "2026-11-05T09:00-05:00")
    code, out = run_send(project, "2026-11-05T13:59:59Z", capsys)
    early = sum(server.script.copies().values())
    assert code == 0 and early == 0
    assert "waiting: 2026-11 at 2026-11-05 09:00 UTC-05:00" in out
    code, out = run_send(project, "2026-11-05T14:59:59", capsys)  # Zurich time, a second early
    assert code == 0 and sum(server.script.copies().values()) == 0
    code, out = run_send(project, "2026-11-05T15:00", capsys)  # Zurich time: exactly 14:00 UTC
    assert code == 0 and "sent 3, deferred 0, failed 0" in out
    code, out = run_send(project, "2026-11-05T20:00-05:00", capsys)
    record("send_at 09:00-05:00, zone Europe/Zurich",
           "nothing at 13:59:59Z; sent at 14:00Z (15:00 Zurich); once",
           f"{early} before, {sum(server.script.copies().values())} after; later run: "
           f"{out.strip().splitlines()[0]}", copies_per_address(project, server.script))
    assert "nothing to send" in out
    assert server.script.copies() == {a: 1 for a in project.addresses}


@pytest.mark.parametrize(("issue", "send_at", "due_utc", "later_utc", "shown"), [
    # Zurich falls back on 25 Oct 2026: 03:00 CEST -> 02:00 CET, so 02:30 happens twice,
    # at 00:30 UTC and at 01:30 UTC.
    ("2026-10", "2026-10-25T02:30", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z",
     "2026-10-25 02:30 CEST"),
    # Zurich springs forward on 29 Mar 2026: 02:00 CET -> 03:00 CEST, so 02:30 does not exist;
    # it means 03:30 CEST (01:30 UTC), one gap later.
    ("2026-03", "2026-03-29T02:30", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z",
     "2026-03-29 02:30 CET"),
])
def test_send_at_in_a_daylight_saving_change_is_sent_once_at_the_first_matching_instant(
        project_at, server: ScriptedServer, capsys: pytest.CaptureFixture, issue: str,
        send_at: str, due_utc: str, later_utc: str, shown: str) -> None:
    """A send_at without an offset is wall-clock time in newsletter.toml's zone. Where that
    wall-clock time is ambiguous or missing, the editor means the first moment the clock on
    the wall shows it (or would have shown it): Python's zoneinfo with fold=0 picks the first
    occurrence of a repeated time, and maps a nonexistent one forward by the gap (02:30 on the
    spring-forward night is read with the offset before the change: 01:30 UTC = 03:30 CEST).
    Whatever the clock does afterwards, the issue goes out once."""
    project = project_at(issue, send_at)
    due = datetime.fromisoformat(due_utc)
    second_before = (due - timedelta(seconds=1)).isoformat()
    code, out = run_send(project, second_before, capsys)
    early = sum(server.script.copies().values())
    assert code == 0 and early == 0 and f"waiting: {issue} at {shown}" in out
    code, out = run_send(project, due_utc, capsys)
    assert code == 0 and "sent 3, deferred 0, failed 0" in out
    laters = []
    for now in (later_utc, (due + timedelta(hours=3)).isoformat(), due_utc):
        code, out = run_send(project, now, capsys)
        laters.append(out.strip().splitlines()[0])
        assert code == 0 and "nothing to send" in out
    record(f"send_at {send_at} Europe/Zurich (DST change)",
           f"first due at {due_utc}, sent once",
           f"{early} sent at {second_before}; later runs: {laters[0]}",
           copies_per_address(project, server.script))
    assert server.script.copies() == {a: 1 for a in project.addresses}
    assert set(project.states(issue).values()) == {"sent"}


# --- December -> January ---------------------------------------------------------------------


def test_new_in_december_creates_january_of_the_next_year(project: Project) -> None:
    result = project.cli("new", "--now", "2026-12-15T10:00")
    created = project.issues / "2027-01.md"
    record("`new` on 15 Dec 2026", "creates 2027-01 due 2027-01-01 09:00",
           f"exit {result.code}: {result.out.strip()}", "n/a")
    assert result.code == 0
    assert result.out.startswith(f"created {created} from _template.md")
    assert "send_at: 2027-01-01T09:00" in created.read_text(encoding="utf-8")


def test_new_uses_the_configured_zone_to_tell_which_month_it_is(project: Project) -> None:
    """23:30 UTC on 31 Dec is already 00:30 on 1 Jan in Zurich: next month is February."""
    result = project.cli("new", "--now", "2026-12-31T23:30:00Z")
    record("`new` at 2026-12-31T23:30Z (Jan 1 in Zurich)", "creates 2027-02",
           f"exit {result.code}: {result.out.strip()}", "n/a")
    assert result.code == 0 and (project.issues / "2027-02.md").exists()
    assert not (project.issues / "2027-01.md").exists()


def _times(*moments: str) -> dict[str, datetime]:
    return {f"item-{m}": datetime.fromisoformat(m) for m in moments}


# Dec issue: send_at 2026-12-03T09:00 Zurich = 08:00Z; Jan issue: 2027-01-01T09:00 = 08:00Z.
DECEMBER_WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 3, 8, tzinfo=UTC))
JANUARY_WINDOW = (datetime(2026, 12, 3, 8, tzinfo=UTC), datetime(2027, 1, 1, 8, tzinfo=UTC))
NEWS = _times("2026-10-31T23:59:59+00:00", "2026-11-01T00:00:00+00:00",
              "2026-11-15T12:00:00+00:00", "2026-12-03T07:59:59+00:00",
              "2026-12-03T08:00:00+00:00", "2026-12-31T23:30:00+00:00",
              "2027-01-01T07:59:59+00:00", "2027-01-01T08:00:00+00:00")
EVENTS = _times("2026-12-03T08:00:00+00:00", "2026-12-24T18:00:00+00:00",
                "2026-11-30T09:00:00+00:00")


def test_december_and_january_windows_tile_with_the_boundary_item_in_january_only(
        project: Project) -> None:
    news = [{"title": f"News {k}", "link": f"https://news.example.org/{k}", "guid": k,
             "published": t} for k, t in NEWS.items()]
    events = [{"title": f"Event {k}", "link": f"https://events.example.org/{k}",
               "id": f"tag:events.example.org,2026:{k}",
               "published": t.isoformat().replace("+00:00", "Z")} for k, t in EVENTS.items()]
    project.server.route("/news.xml", make_rss(news))
    project.server.route("/events.xml", make_atom(events))
    project.write_config(
        project.feed_table("news", project.server.url("/news.xml"), "News", max_items=50)
        + project.feed_table("events", project.server.url("/events.xml"), "Events",
                             kind="events", max_items=50))
    project.draft("2026-12", send_at="2026-12-03T09:00")
    assert project.cli("new", "--now", "2026-12-15T10:00").code == 0
    january = project.issues / "2027-01.md"
    january.write_text(january.read_text(encoding="utf-8").replace(
        'subject: ""', 'subject: "January"'), encoding="utf-8")

    december_pull = project.cli("pull", "2026-12", "--now", "2026-12-10T12:00")
    january_pull = project.cli("pull", "2027-01", "--now", "2027-01-02T12:00")
    assert december_pull.code == 0 and january_pull.code == 0, december_pull.err + january_pull.err
    assert "(window 2026-11-01 00:00 to 2026-12-03 08:00 UTC)" in december_pull.out
    assert "(window 2026-12-03 08:00 to 2027-01-01 08:00 UTC)" in january_pull.out
    dec = read_snapshot(project.issues / "2026-12.items.yaml")
    jan = read_snapshot(project.issues / "2027-01.items.yaml")
    dec_ids = {i.id for i in dec.items}
    jan_ids = {i.id for i in jan.items}

    def ids_in(window: tuple[datetime, datetime]) -> set[str]:
        start, end = window
        return ({k for k, t in NEWS.items() if start <= t < end}
                | {f"tag:events.example.org,2026:{k}" for k, t in EVENTS.items()
                   if start <= t < end})

    boundary = {"item-2026-12-03T08:00:00+00:00",
                "tag:events.example.org,2026:item-2026-12-03T08:00:00+00:00"}
    record("items across Dec -> Jan (boundary at 2026-12-03T08:00Z)",
           "half-open windows: no item twice, none dropped, boundary in Jan",
           f"Dec {len(dec_ids)}, Jan {len(jan_ids)}, in both {len(dec_ids & jan_ids)}, "
           f"boundary in Jan: {boundary <= jan_ids}", "n/a")
    assert dec.window_end == jan.window_start == DECEMBER_WINDOW[1]
    assert jan.window_end == JANUARY_WINDOW[1]
    assert not dec_ids & jan_ids
    assert boundary <= jan_ids and not boundary & dec_ids
    assert dec_ids == ids_in(DECEMBER_WINDOW)
    assert jan_ids == ids_in(JANUARY_WINDOW)
    assert "item-2026-10-31T23:59:59+00:00" not in dec_ids | jan_ids  # before the first window
    assert "item-2027-01-01T08:00:00+00:00" not in jan_ids  # February's, at January's end


# --- the clock stepping back -------------------------------------------------------------------


def test_clock_stepping_back_after_a_send_does_not_send_the_issue_again(
        project_at, server: ScriptedServer, capsys: pytest.CaptureFixture) -> None:
    project = project_at("2026-11", "2026-11-05T09:00")
    code, out = run_send(project, "2026-11-22T10:00", capsys)
    assert code == 0 and "sent 3," in out
    outs = []
    for now in ("2026-11-05T09:30", "2026-11-05T08:00", "2026-11-01T00:00"):
        code, out = run_send(project, now, capsys)  # the machine's clock corrected backwards
        outs.append(out.strip().splitlines()[0])
        assert code == 0 and "nothing to send; sent already: 2026-11" in out
    record("clock steps back after the send (to before send_at)", "nothing sent again",
           "; ".join(outs[:1]), copies_per_address(project, server.script))
    assert server.script.copies() == {a: 1 for a in project.addresses}


def _attempts(project: DeliveryProject, address: str, issue: str = "2026-11") -> int:
    with sqlite3.connect(project.db) as conn:
        return conn.execute(
            "SELECT d.attempts FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "WHERE d.issue = ? AND s.email = ?", (issue, address)).fetchone()[0]


def test_clock_stepping_back_does_not_retry_a_deferral_early_or_twice(
        project_at, server: ScriptedServer, capsys: pytest.CaptureFixture) -> None:
    project = project_at("2026-11", "2026-11-05T09:00")
    a = project.addresses[0]
    server.script.rcpt[a] = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    code, _ = run_send(project, "2026-11-22T10:00", capsys)  # retry due 5 min after the 451
    assert code == 0 and project.states()[a] == "deferred"
    early = []
    for now in ("2026-11-22T09:00", "2026-11-22T10:04:59", "2026-11-22T09:59"):
        code, out = run_send(project, now, capsys)
        early.append(len(server.script.rcpt[a]))
        assert code == 0 and "nothing to send" in out
    assert early == [1, 1, 1] and _attempts(project, a) == 1  # the second 451 is unused
    code, out = run_send(project, "2026-11-22T10:06", capsys)
    assert code == 0 and "deferred 1" in out and _attempts(project, a) == 2
    code, out = run_send(project, "2026-11-22T10:06", capsys)  # the same instant again
    assert "nothing to send" in out and _attempts(project, a) == 2
    code, out = run_send(project, "2026-11-22T12:00", capsys)  # 2nd retry due 15 min later
    record("deferred, then the clock steps back before the retry time",
           "no early retry; one retry per due time",
           f"attempts {_attempts(project, a)}, state {project.states()[a]}",
           copies_per_address(project, server.script))
    assert code == 0 and project.states()[a] == "sent" and _attempts(project, a) == 3
    assert server.script.copies() == {x: 1 for x in project.addresses}


# --- a deferral that never clears ------------------------------------------------------------

START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
RETRY_PERIOD = timedelta(hours=72)
RUNS = [timedelta(0), timedelta(minutes=10)] + [timedelta(hours=h) for h in range(1, 85)]


def _hours(offset: timedelta) -> str:
    return f"+{offset / timedelta(hours=1):g} h"


def _state_and_reply(project: DeliveryProject, address: str) -> tuple[str, str]:
    with sqlite3.connect(project.db) as conn:
        return conn.execute(
            "SELECT d.state, d.last_reply FROM deliveries d JOIN subscribers s "
            "ON s.id = d.subscriber_id WHERE s.email = ?", (address,)).fetchone()


def test_a_deferral_that_never_clears_is_retried_at_most_once_per_run_and_failed_by_73_hours(
        project_at, server: ScriptedServer, capsys: pytest.CaptureFixture) -> None:
    """451 on every attempt, and `send` run at +0, +10 min, +1 h, +2 h, ... +84 h: retried
    with backoff (most runs find nothing due), never twice in one run, `failed` with "gave up
    after 72 h" by the run at +73 h, and never tried again after that."""
    project = project_at("2026-11", "2026-11-05T09:00")
    a = project.addresses[0]
    server.script.rcpt[a] = ["451 4.3.0 mailbox temporarily unavailable"] * 200
    tried_at, state_at_73 = [], ("", "")
    for offset in RUNS:
        before = len(server.script.rcpt[a])
        code, _ = run_send(project, (START + offset).isoformat(), capsys)
        assert code == 0
        tried = before - len(server.script.rcpt[a])
        assert tried <= 1, f"{tried} attempts in the run at {_hours(offset)}"
        if tried:
            tried_at.append(offset)
        if offset == timedelta(hours=73):
            state_at_73 = _state_and_reply(project, a)
    capsys.readouterr()
    project.cli("status", "2026-11")
    status = capsys.readouterr().out
    record("451 on every attempt, runs from +0 to +84 h",
           "<= 1 attempt per run; failed 'gave up' by +73 h; no attempt after",
           f"{len(tried_at)} attempts in {len(RUNS)} runs, last at {_hours(tried_at[-1])}; "
           f"state at +73 h: {state_at_73[0]}", copies_per_address(project, server.script))
    assert len(tried_at) == _attempts(project, a) < len(RUNS) // 4  # backoff: most runs skip
    state, reply = state_at_73
    assert state == "failed" and reply.startswith("gave up after 72 h: 451 4.3.0"), reply
    assert _state_and_reply(project, a) == state_at_73  # later runs changed nothing
    assert RETRY_PERIOD <= tried_at[-1] <= timedelta(hours=73)
    assert f"failed   {a}  gave up after 72 h: 451 4.3.0" in status
    assert server.script.copies() == {x: 1 for x in project.addresses[1:]}
