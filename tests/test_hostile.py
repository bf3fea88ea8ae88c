"""Hostile and broken input everywhere a user can give it: drafts, newsletter.toml, subscriber
CSV rows and feeds. Each is run through the real CLI, as an editor or cron would: the exit
code, a one-line message naming the file, line, row or feed, no traceback, the rest of the work
going on where that is safe, and never a half-sent issue (everyone or no one has it, and the
ledger says which). Each case adds a row to the fault table (tests/faults_table.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import Project, make_rss
from conftest_delivery import DeliveryProject, make_delivery_project
from faults_table import record
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer

from newsletter.audience.tokens import make_token
from newsletter.compose.personalise import Recipient, personalise_html, personalise_text

NOW = "2026-11-22T10:00"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    srv = ScriptedServer(Script())
    srv.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", srv.url)
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    yield srv
    srv.stop()


@pytest.fixture
def delivery(tmp_path: Path, server: ScriptedServer) -> DeliveryProject:
    """The sample issue (ready, due on 5 Nov) and three subscribers, sending over SMTP."""
    return make_delivery_project(tmp_path / "nl", 3)


@pytest.fixture
def run(capsys: pytest.CaptureFixture) -> Callable[..., Run]:
    def cli(project: DeliveryProject, *args: str) -> Run:
        capsys.readouterr()
        code = project.cli(*args)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return Run(code, captured.out, captured.err)

    return cli


def ledger(project: DeliveryProject) -> dict[str, int]:
    """Deliveries by state, and frozen editions; {} when nothing was ever frozen."""
    if not project.db.exists():
        return {}
    with sqlite3.connect(project.db) as conn:
        rows = dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        editions = conn.execute("SELECT count(*) FROM editions").fetchone()[0]
    return {**rows, **({"editions": editions} if editions else {})}


def copies(project: DeliveryProject, script: Script, addresses: list[str] | None = None) -> str:
    counts = [script.copies()[a] for a in (addresses or project.addresses)]
    return f"{counts.count(1)} x1, {counts.count(0)} x0, {sum(c > 1 for c in counts)} x2+"


def assert_nothing_sent(project: DeliveryProject, script: Script) -> None:
    assert script.messages == []
    assert ledger(project) == {}  # not even frozen: a fixed draft goes out whole, later


def check_and_send(delivery: DeliveryProject, run: Callable[..., Run]) -> tuple[Run, Run, Run]:
    """What an editor and cron would run on a bad draft: check, send ISSUE, then plain send."""
    return (run(delivery, "check", "2026-11"), run(delivery, "send", "2026-11", "--now", NOW),
            run(delivery, "send", "--now", NOW))


SAMPLE = (SAMPLE_ISSUES / "2026-11.md").read_text(encoding="utf-8")


def refused(run: Run, draft: Path, *parts: str) -> bool:
    """A one-line warning naming the draft and saying why the issue was not sent."""
    return any(line.startswith("newsletter: warning: ") and str(draft) in line
               and all(part in line for part in parts) for line in run.err_lines)


def set_front_matter(project: DeliveryProject, key: str, value: str) -> tuple[Path, int]:
    """Write KEY: VALUE (a JSON string, which YAML reads as is) into the sample draft; returns
    the draft's path and the line the key is on."""
    draft = project.root / "issues" / "2026-11.md"
    lines = SAMPLE.split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    lines[number] = f"{key}: {json.dumps(value)}"
    draft.write_text("\n".join(lines), encoding="utf-8")
    return draft, number + 1


def set_body(project: DeliveryProject, body: str) -> Path:
    draft = project.root / "issues" / "2026-11.md"
    head = SAMPLE.split("\n---\n", 1)[0]
    draft.write_text(f"{head}\n---\n\n{body}", encoding="utf-8")
    return draft


# --- drafts: the subject and preheader ---------------------------------------------------------

INBOX_LINE_CASES = [
    ("CR/LF", "Hi\r\nBcc: x@evil.example", "must be on one line"),
    ("RFC 2047 encoded word", "=?utf-8?q?Hi=0D=0ABcc:_x@evil.example?=",
     "contains an RFC 2047 encoded word"),
    ("NUL", "Hi\x00there", "contains a control character (U+0000)"),
    ("bidi override", "Invoice \u202egpj.exe", "contains a bidi control character (U+202E)"),
    ("line separator", "Hi\u2028Bcc: x@evil.example", "contains a control character (U+2028)"),
]


@pytest.mark.parametrize("key", ["subject", "preheader"])
@pytest.mark.parametrize(("label", "value", "reason"), INBOX_LINE_CASES,
                         ids=[c[0] for c in INBOX_LINE_CASES])
def test_hostile_subject_or_preheader_is_refused_at_its_line_and_nothing_is_frozen(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run], key: str,
        label: str, value: str, reason: str) -> None:
    draft, line = set_front_matter(delivery, key, value)
    problem = f"front matter: '{key}' {reason}"
    check, explicit, cron = check_and_send(delivery, run)
    record(f"draft {key} with {label}", "check 1, send ISSUE 2, cron send 1; none sent",
           f"check {check.code}, send ISSUE {explicit.code}, cron {cron.code}: "
           f"{explicit.err_lines[0][:70]}", copies(delivery, server.script))
    assert check.code == 1 and f"{draft}:{line}: error: {problem}" in check.out
    assert explicit.code == 2 and len(explicit.err_lines) == 1
    assert explicit.err_lines[0].startswith(f"newsletter: {draft}: line {line}: {problem}")
    assert cron.code == 1
    assert any(w.startswith(f"newsletter: warning: {draft}: line {line}: {problem}")
               for w in cron.err_lines)
    assert_nothing_sent(delivery, server.script)


def test_a_hostile_draft_does_not_hold_back_another_due_issue(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    issues = delivery.root / "issues"
    # December's issue, due early (an October one would be off schedule on 22 November)
    (issues / "2026-12.md").write_text(SAMPLE.replace("send_at: 2026-11-05T09:00",
                                                      "send_at: 2026-11-20T09:00"),
                                       encoding="utf-8")
    (issues / "2026-12.items.yaml").write_text(
        (issues / "2026-11.items.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    draft, line = set_front_matter(delivery, "subject", "Hi\r\nBcc: x@evil.example")
    cron = run(delivery, "send", "--now", NOW)
    record("two due issues, one with CR/LF in its subject", "the good one sent whole; exit 1",
           f"exit {cron.code}; 2026-12 {sorted(set(delivery.states('2026-12').values()))}, "
           f"2026-11 {delivery.states('2026-11')}", copies(delivery, server.script))
    assert cron.code == 1
    assert f"newsletter: warning: {draft}: line {line}: front matter: 'subject' must be on " \
           "one line" in cron.err_lines
    assert "sent 3, deferred 0, failed 0" in cron.out
    assert server.script.copies() == {a: 1 for a in delivery.addresses}
    assert set(delivery.states("2026-12").values()) == {"sent"}
    assert delivery.states("2026-11") == {}


# --- drafts: the body --------------------------------------------------------------------------

ACTIVE_CONTENT = """\
Hello <script>alert(1)</script> world.

<iframe src="https://evil.example/frame"></iframe>

<img src="https://ipbusiness.example.org/logo.png" alt="Logo" onerror="alert(2)">

<p onclick="alert(3)" style="background:url(javascript:alert(4))">Styled</p>

<svg onload="alert(5)"></svg> <form action="https://evil.example/"><input name="p"></form>

<a href="https://ipbusiness.example.org/ok" onmouseover="alert(6)">A fine link</a>
"""


class Structure(HTMLParser):
    """Every tag and attribute of a document, in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, str, tuple[str, ...]]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(("start", tag, tuple(name for name, _ in attrs)))
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(("end", tag, ()))


def active_content(html: str) -> list[str]:
    """Scripts, frames, forms, event handlers and javascript: URLs in an HTML document."""
    doc = Structure(html)
    found = [tag for _, tag, _ in doc.tags
             if tag in ("script", "iframe", "svg", "form", "input", "object", "embed")]
    found += [f"{tag} {name}" for tag, name, _ in doc.attributes if name.startswith("on")]
    found += [f"{tag} {name}={value}" for tag, name, value in doc.attributes
              if "javascript:" in value.lower().replace("\t", "").replace(" ", "")]
    return found


def test_scripts_frames_and_handlers_in_a_draft_never_reach_an_inbox(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    set_body(delivery, ACTIVE_CONTENT)
    check = run(delivery, "check", "2026-11")
    send = run(delivery, "send", "--now", NOW)
    htmls = [m.get_body(("html",)).get_content() for a in delivery.addresses
             for m in server.script.parsed(a)]
    found = sorted({x for html in htmls for x in active_content(html)})
    record("draft body with <script>, <iframe>, on*=, style javascript:",
           "sanitised; sent to all", f"check {check.code}, send {send.code}, active content "
           f"left: {found or 'none'}", copies(delivery, server.script))
    assert check.code == 0 and send.code == 0
    assert server.script.copies() == {a: 1 for a in delivery.addresses}
    assert found == [] and all("alert(" not in html for html in htmls)
    assert all("A fine link" in html and "Styled" in html for html in htmls)


def test_javascript_links_in_a_draft_are_dropped_and_check_and_send_refuse_the_issue(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    draft = set_body(delivery, '[click](javascript:alert(1)) or <a href="JaVaScRiPt:alert(2)">'
                               'here</a> or <a href="java&#x09;script:alert(3)">there</a>\n')
    check = run(delivery, "check", "2026-11")
    build = run(delivery, "build", "2026-11", "--no-screenshots")
    html = (delivery.root / "build" / "2026-11" / "email.html").read_text(encoding="utf-8")
    cron = run(delivery, "send", "--now", NOW)
    record("draft body with javascript: links", "links dropped; check 1; send refuses",
           f"check {check.code}, cron send {cron.code}, active content {active_content(html)}",
           copies(delivery, server.script))
    assert active_content(html) == [] and build.code == 0
    assert check.code == 1
    assert check.out.count(f"{draft}:10: error: a javascript: link is not allowed in email") == 3
    assert cron.code == 1 and refused(cron, draft, "not sent: 3 error(s)")
    assert_nothing_sent(delivery, server.script)


def test_template_syntax_in_a_draft_is_shown_literally_and_check_reports_each_line(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    draft = set_body(delivery, 'Dear {{ config }}, {{ "pwn" ~ "ed" }}.\n\n'
                               '{% include "/etc/passwd" %} {{ newsletter.list_id }}\n')
    check = run(delivery, "check", "2026-11")
    build = run(delivery, "build", "2026-11", "--no-screenshots")
    html = (delivery.root / "build" / "2026-11" / "email.html").read_text(encoding="utf-8")
    text = (delivery.root / "build" / "2026-11" / "email.txt").read_text(encoding="utf-8")
    cron = run(delivery, "send", "--now", NOW)
    record("draft body with {{ config }} and {% include %}",
           "never evaluated; check 1 at the lines; send refuses",
           f"check {check.code} ({check.out.count('template syntax')} reports), cron send "
           f"{cron.code}, evaluated: {'pwned' in html + text}", copies(delivery, server.script))
    assert build.code == 0 and "pwned" not in html + text and "root:" not in html + text
    assert '{{ "pwn" ~ "ed" }}' in text and "{{ newsletter.list_id }}" in html
    assert check.code == 1
    first, second = f"{draft}:10: error: ", f"{draft}:12: error: "
    assert check.out.count(first + "template syntax '{{' is sent literally") == 2
    assert check.out.count(second + "template syntax '{%' is sent literally") == 1
    assert cron.code == 1 and refused(cron, draft, "not sent: 4 error(s)")
    assert_nothing_sent(delivery, server.script)


def test_a_huge_draft_is_reported_over_the_gmail_clip_and_not_sent(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    """1 MB of Markdown, ten times Gmail's clip. (5 MB behaves the same, in about 14 s: the
    Markdown conversion and the text part are linear but slow, and the suite must stay fast.)"""
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 8 + "\n\n"
    draft = set_body(delivery, paragraph * (1024 * 1024 // len(paragraph)))
    assert draft.stat().st_size > 1_000_000
    check = run(delivery, "check", "2026-11")
    cron = run(delivery, "send", "--now", NOW)
    record("1 MB draft body", "check: over Gmail's clip, exit 1; send refuses",
           f"check {check.code}, cron send {cron.code}", copies(delivery, server.script))
    assert check.code == 1
    assert f"{draft}: error: HTML is " in check.out
    assert "KB on the wire; Gmail clips messages over 102 KB" in check.out
    assert cron.code == 1 and refused(cron, draft, "not sent: 1 error(s); first: ", "HTML is ")
    assert_nothing_sent(delivery, server.script)


BROKEN_FILES = [
    ("empty file", b"", ":1", "front matter: the draft must start with a '---' line"),
    ("UTF-16", SAMPLE.encode("utf-16"), "", "not UTF-8 text (byte 0)"),
    ("Latin-1", SAMPLE.replace("Exporting soon?", "Exportation: café crème").encode("latin-1",
                                                                                  "replace"),
     "", "not UTF-8 text (byte "),
    ("NUL in the body", SAMPLE.encode() + b"\nTrailing \x00 byte\n", "", "contains a NUL byte"),
]


@pytest.mark.parametrize(("label", "data", "where", "reason"), BROKEN_FILES,
                         ids=[c[0] for c in BROKEN_FILES])
def test_a_draft_file_that_is_empty_or_not_utf8_is_named_with_the_reason(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run], label: str,
        data: bytes, where: str, reason: str) -> None:
    draft = delivery.root / "issues" / "2026-11.md"
    draft.write_bytes(data)
    check, explicit, cron = check_and_send(delivery, run)
    record(f"draft file: {label}", "named with the reason; check 1, send 2, cron 1; none sent",
           f"check {check.code}, send {explicit.code}, cron {cron.code}: "
           f"{explicit.err_lines[0][-60:]}", copies(delivery, server.script))
    assert check.code == 1 and f"{draft}{where}: error: {reason}" in check.out
    assert explicit.code == 2 and len(explicit.err_lines) == 1
    assert explicit.err_lines[0].startswith(f"newsletter: {draft}{where}: {reason}")
    assert cron.code == 1
    assert any(line.startswith(f"newsletter: warning: {draft}{where}: {reason}")
               for line in cron.err_lines)
    assert_nothing_sent(delivery, server.script)


# --- newsletter.toml ---------------------------------------------------------------------------

FROM = 'from = "IP for Business <newsletter@ipbusiness.example.org>"'
LIST_ID = 'list_id = "ip-for-business.ipbusiness.example.org"'
NAME = 'name = "IP for Business"'
BASE_URL = 'base_url = "https://ipbusiness.example.org/newsletter"'
REPLY_TO = 'reply_to = "sme-team@ipbusiness.example.org"'
TIMEZONE = 'timezone = "Europe/Zurich"'
WHOLE_FILE = ""
CONFIG_CASES = [
    ("from with CR/LF", FROM, r'from = "IP <news@ipbusiness.example.org>\r\nBcc: x@evil.example"',
     "'newsletter.from' must be on one line"),
    ("from with two addresses", FROM, 'from = "news@ipbusiness.example.org, x@evil.example"',
     "'newsletter.from' must be one address like 'Name <news@example.org>'"),
    ("from with an encoded word", FROM,
     'from = "=?utf-8?q?IP=0D=0ABcc:_x?= <news@ipbusiness.example.org>"',
     "'newsletter.from' contains an RFC 2047 encoded word"),
    ("reply_to with two addresses", REPLY_TO,
     'reply_to = "a@ipbusiness.example.org, x@evil.example"',
     "'newsletter.reply_to' must be one plain ASCII address"),
    ("reply_to not ASCII", REPLY_TO, 'reply_to = "équipe@ipbusiness.example.org"',
     "'newsletter.reply_to' must be one plain ASCII address"),
    ("list_id with CR/LF", LIST_ID, r'list_id = "ip.example.org\r\nBcc: x@evil.example"',
     "'newsletter.list_id' must be on one line"),
    ("list_id with header syntax", LIST_ID, 'list_id = "ip.example.org> , <evil.example"',
     "'newsletter.list_id' must be a dot-separated ASCII name"),
    ("name with CR/LF", NAME, r'name = "IP\r\nBcc: x@evil.example"',
     "'newsletter.name' must be on one line"),
    ("name with NUL", NAME, r'name = "IP\u0000for Business"',
     "'newsletter.name' contains a control character"),
    ("base_url javascript:", BASE_URL, 'base_url = "javascript:alert(1)"',
     "'newsletter.base_url' must start with https:// (or http://)"),
    ("base_url with a quote and <>", BASE_URL, r'base_url = "https://x.example/\"><script>"',
     "'newsletter.base_url' must be a plain URL"),
    ("timezone that does not exist", TIMEZONE, 'timezone = "Mars/Olympus_Mons"',
     "'newsletter.timezone' is not a known time zone: 'Mars/Olympus_Mons'"),
    ("unknown key", TIMEZONE, 'timezone = "Europe/Zurich"\ntime_zone = "UTC"',
     "'newsletter.time_zone' is not a known key"),
    ("not TOML", WHOLE_FILE, "<html><body>not toml</body></html>", "not valid TOML: "),
    ("empty file", WHOLE_FILE, "", "'newsletter' section is missing"),
]


@pytest.mark.parametrize(("label", "old", "new", "message"), CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_newsletter_toml_exits_2_naming_the_key_before_anything_is_sent(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run], label: str,
        old: str, new: str, message: str) -> None:
    text = delivery.config.read_text(encoding="utf-8")
    assert old in text
    delivery.config.write_text(text.replace(old, new, 1) if old else new, encoding="utf-8")
    result = run(delivery, "send", "--now", NOW)
    record(f"newsletter.toml: {label}", "exit 2 naming the key; none sent",
           f"exit {result.code}: {result.err_lines[0][len('newsletter: '):][-70:]}",
           copies(delivery, server.script))
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith(f"newsletter: {delivery.config}: ")
    assert message in result.err_lines[0]
    assert server.script.messages == [] and not delivery.db.exists()


# --- subscriber CSV ----------------------------------------------------------------------------

LONG_NAME = "x" * 10_000
CSV_ROWS = [  # (row, rejected: the reason, or "" for a row that imports)
    ("email,name,language,tags", ""),
    ("good1@example.com,Good One,en,", ""),
    ('crlf@example.com,"Ann\r\nBcc: evil@evil.example",en,', ""),  # two physical lines
    ("two@at@example.com,Two,en,", "is not a valid address"),
    ('=HYPERLINK("https://evil.example")@example.com,Formula,en,',
     "looks like a spreadsheet formula, not an address"),
    ("formula@example.com,=1+1,en,", ""),  # a name is only text; export quotes it
    ("ew@example.com,=?utf-8?q?Ann=0D=0ABcc:_x@evil.example?=,en,",
     "name contains an RFC 2047 encoded word"),
    ("sp ace@example.com,Space,en,", "is not a valid address"),
    (f"long@example.com,{LONG_NAME},en,", "name is longer than 200 characters"),
    ("extra@example.com,Smith, John,en,news", "5 fields, but the header has 4"),
    ("bidi@example.com,Ann\u202eevil,en,", ""),
    ('quote@example.com,"Evil <x@evil.example>, y@evil.example",en,', ""),
    ("good2@example.com,Zoë Müller,de,", ""),
]
GOOD_ROWS = ["good1@example.com", "crlf@example.com", "formula@example.com", "bidi@example.com",
             "quote@example.com", "good2@example.com"]


def test_hostile_csv_rows_are_reported_by_line_and_the_good_rows_get_one_clean_message(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run]) -> None:
    csv_file = delivery.root / "subscribers" / "sample.csv"
    csv_file.write_bytes("\r\n".join(row for row, _ in CSV_ROWS).encode() + b"\r\n")
    expected, line = {}, 0
    for row, reason in CSV_ROWS:
        line += 1
        if reason:
            expected[line] = reason
        line += row.count("\r\n")
    imported = run(delivery, "subscribers", "import", str(csv_file))
    warnings = [w for w in imported.err_lines if w.startswith(f"newsletter: warning: {csv_file}:")]
    reported = {int(w.removeprefix(f"newsletter: warning: {csv_file}:").split(":")[0]): w
                for w in warnings}
    send = run(delivery, "send", "--now", NOW)
    messages = [(rcpt, m) for rcpt in server.script.copies() for m in server.script.parsed(rcpt)]
    to_headers = [(rcpt, m["To"].addresses) for rcpt, m in messages]
    record("CSV: CR/LF, two @, formulas, encoded word, space, 10k name, extra column",
           "bad rows named file:line, exit 2; good rows each one message, one To address",
           f"import {imported.code}, {len(reported)} rows reported at lines "
           f"{sorted(reported)}; send {send.code}", copies(delivery, server.script, GOOD_ROWS))
    assert imported.code == 2 and len(warnings) == len(imported.err_lines) == len(expected)
    assert sorted(reported) == sorted(expected)
    for number, reason in expected.items():
        assert reason in reported[number]
        assert LONG_NAME not in reported[number]
    assert f"imported: {len(GOOD_ROWS)} new, 0 updated, {len(expected)} rejected" in imported.out
    assert send.code == 0 and f"sent {len(GOOD_ROWS)}, deferred 0, failed 0" in send.out
    assert server.script.copies() == {a: 1 for a in GOOD_ROWS}
    assert all(len(addrs) == 1 and addrs[0].addr_spec == rcpt for rcpt, addrs in to_headers)
    assert all(m["Bcc"] is None and m["Cc"] is None for _, m in messages)
    names = {rcpt: addrs[0].display_name for rcpt, addrs in to_headers}
    assert names["crlf@example.com"] == "Ann Bcc: evil@evil.example"
    assert names["quote@example.com"] == "Evil <x@evil.example>, y@evil.example"
    assert "\u202e" not in names["bidi@example.com"]
    assert set(delivery.states().values()) == {"sent"}


CSV_FILES = [
    ("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
     "contains NUL bytes (is it a UTF-16 or binary file? save as CSV UTF-8)"),
    ("UTF-16 file", "email,name\r\nzoe@example.com,Zoë\r\n".encode("utf-16"),
     "contains NUL bytes (is it a UTF-16 or binary file? save as CSV UTF-8)"),
    ("empty file", b"", "empty file; expected a header line with an 'email' column"),
    ("no email column", b"name,language\nZoe,en\n", "line 1: no 'email' column in the header"),
]


@pytest.mark.parametrize(("label", "data", "message"), CSV_FILES, ids=[c[0] for c in CSV_FILES])
def test_a_csv_file_that_is_not_a_subscriber_list_exits_2_naming_it_and_imports_nothing(
        delivery: DeliveryProject, server: ScriptedServer, run: Callable[..., Run], label: str,
        data: bytes, message: str) -> None:
    bad = delivery.root / "subscribers" / "bad.csv"
    bad.write_bytes(data)
    result = run(delivery, "subscribers", "import", str(bad))
    listed = run(delivery, "subscribers", "list")
    record(f"CSV: {label}", "exit 2 naming the file; nothing imported",
           f"exit {result.code}: {result.err_lines[0][-60:]}", "n/a")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith(f"newsletter: {bad}: {message}")
    assert listed.out.strip().splitlines() == ["total 0: none"]


# --- feeds -------------------------------------------------------------------------------------

ITEM_TIME = "Tue, 20 Oct 2026 10:00:00 GMT"  # inside 2026-11's window


def billion_laughs(encoding: str) -> bytes:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    return (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE rss [{entities}]>'
            '<rss version="2.0"><channel><title>Laughs</title><item><title>&i;</title>'
            "<link>https://laughs.example.org/1</link></item></channel></rss>").encode(encoding)


HOSTILE_ITEMS = [
    {"title": "<script>alert(1)</script>Patent <b onmouseover=alert(2)>news</b>",
     "link": "https://hostile.example.org/1", "guid": "h1", "published": ITEM_TIME,
     "description": '<p onclick="alert(3)">Read <a href="javascript:alert(4)">this</a>'
                    '<img src="https://hostile.example.org/i.png" onerror="alert(5)" alt="i">'
                    '<script>alert(6)</script><iframe src="https://evil.example/"></iframe>'
                    '<a href="https://hostile.example.org/ok" style="x:expression(alert(7))">'
                    "ok</a><svg onload=alert(8)></svg></p>"},
    {"title": "A javascript: link", "link": "javascript:alert(9)", "guid": "h2",
     "published": ITEM_TIME},
    {"title": "Data link", "link": "data:text/html,<script>alert(10)</script>", "guid": "h3",
     "published": ITEM_TIME},
]


def test_hostile_feeds_are_each_a_warning_naming_the_feed_and_the_good_feed_comes_through(
        project: Project) -> None:
    srv = project.server
    huge = b"<rss>" + b" " * (50 * 1024 * 1024) + b"</rss>"
    good = make_rss([{"title": "Good news", "link": "https://good.example.org/1", "guid": "g1",
                      "published": ITEM_TIME}])
    latin = make_rss([{"title": "Café crème brûlée", "link": "https://latin.example.org/1",
                       "guid": "l1", "published": ITEM_TIME}]).decode().encode("latin-1")
    feeds = {
        "good": srv.route("/good.xml", good),
        "slow": srv.route("/slow.xml", good, delay=30),
        "laughs": srv.route("/laughs.xml", billion_laughs("utf-8")),
        "laughs-ebcdic": srv.route("/laughs-ebcdic.xml", billion_laughs("cp037")),
        "huge": srv.route("/huge.xml", huge),
        "huge-stream": srv.route("/huge-stream.xml", huge, content_length=False),
        "latin": srv.route("/latin.xml", latin),
        "hostile": srv.route("/hostile.xml", make_rss(HOSTILE_ITEMS)),
    }
    project.write_config("".join(project.feed_table(name, url, f"Section {name}", max_items=10)
                                 for name, url in feeds.items()))
    project.draft("2026-11")
    result = project.cli("pull", "2026-11", "--timeout", "0.5", "--now", "2026-11-22T12:00")
    expected = {
        "slow": "timed out after 0.5 s",
        "laughs": "declares XML entities; refused",
        "laughs-ebcdic": "declares XML entities; refused",
        "huge": f"too large ({len(huge)} bytes, limit {5 * 1024 * 1024})",
        "huge-stream": f"too large (over {5 * 1024 * 1024} bytes)",
        "latin": "document declared as utf-8, but parsed as ",
        "hostile": "2 item(s) dropped: no absolute http(s) link",
    }
    warnings = [line for line in result.err.splitlines() if line.strip()]
    snapshot_file = project.issues / "2026-11.items.yaml"
    snapshot = yaml.safe_load(snapshot_file.read_text(encoding="utf-8"))
    by_feed: dict[str, list[dict]] = {}
    for item in snapshot["items"]:
        by_feed.setdefault(item["feed"], []).append(item)
    record("feeds: no answer, billion laughs (UTF-8, EBCDIC), 50 MB (declared, streamed), "
           "wrong charset, HTML/JS", "a warning per bad feed; the good ones come through",
           f"exit {result.code}, {len(warnings)} warnings, items from {sorted(by_feed)}", "n/a")
    assert result.code == 0 and "Traceback" not in result.err
    assert len(warnings) == len(expected)
    for name, reason in expected.items():
        assert any(w.startswith(f"newsletter: warning: feed {name}: {reason}")
                   for w in warnings), (name, warnings)
    assert f"{len(expected)} warning(s)" in result.out
    assert sorted(by_feed) == ["good", "hostile", "latin"]
    assert by_feed["latin"][0]["title"] == "Café crème brûlée"
    assert [i["link"] for i in by_feed["hostile"]] == ["https://hostile.example.org/1"]
    hostile = by_feed["hostile"][0]
    assert hostile["title"] == "Patent news"
    assert active_content(hostile["summary"]) == []
    text = snapshot_file.read_text(encoding="utf-8")
    assert "javascript:" not in text and "alert(" not in text and "data:" not in text

    build = project.cli("build", "2026-11", "--no-screenshots")
    html = (project.root / "build" / "2026-11" / "email.html").read_text(encoding="utf-8")
    assert build.code == 0 and active_content(html) == [] and "alert(" not in html


# --- placeholder substitution: a property ------------------------------------------------------

TEMPLATE = (
    '<html><body><div style="display:none">__NL_NAME__, this month</div>'
    '<p class="greeting">Dear __NL_NAME__,</p>'
    '<img src="https://ipbusiness.example.org/logo.png" alt="For __NL_NAME__">'
    '<p><a href="__NL_UNSUBSCRIBE_URL__" title="Unsubscribe __NL_NAME__">Unsubscribe</a> '
    "<a href='__NL_UNSUBSCRIBE_URL__'>(single quotes)</a></p>"
    "<table><tr><td>__NL_NAME__</td></tr></table></body></html>")
TEXT_TEMPLATE = "Dear __NL_NAME__,\n\nUnsubscribe: __NL_UNSUBSCRIBE_URL__\n"
TEMPLATE_TAGS = Structure(TEMPLATE).tags
BASE = "https://ipbusiness.example.org/newsletter/unsubscribe/"


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
       address=st.emails())
def test_personalising_never_adds_a_tag_or_attribute_and_keeps_the_name_verbatim_in_text(
        name: str, address: str) -> None:
    url = BASE + make_token("test-secret", "ip-for-business.ipbusiness.example.org", address)
    recipient = Recipient(name, url)
    html = personalise_html(TEMPLATE, recipient, "reader")
    text = personalise_text(TEXT_TEMPLATE, recipient, "reader")
    personal = Structure(html)
    assert personal.tags == TEMPLATE_TAGS
    assert [v for t, n, v in personal.attributes if n == "href"] == [url, url]
    assert (name or "reader") in text
