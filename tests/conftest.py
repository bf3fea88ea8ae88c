"""Shared fixtures for the compose tests: a real feed server on 127.0.0.1 and a small project."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

# Tests in one package's folder reuse fixtures and helpers defined in another's test modules
# (test_layout's sample editions, test_editions' multilingual project, test_web's links):
# every folder is importable by module name, whichever file pytest starts from.
for _folder in sorted(Path(__file__).resolve().parent.iterdir()):
    if _folder.is_dir() and any(_folder.glob("test_*.py")) and str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from sample_issues import SAMPLE_ISSUES  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NEWSLETTER_SCRIPT = Path(sys.executable).with_name("newsletter")


# --- a feed server on 127.0.0.1 ----------------------------------------------------------------


@dataclass
class Route:
    """What the server answers on one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (cut short when the test ends)
    etag: str | None = None  # answer 304 when the request's If-None-Match matches
    last_modified: str | None = None  # answer 304 when If-Modified-Since matches
    content_length: bool = True  # False: no Content-Length, the body ends when the socket closes


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


class FeedServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 with per-test routes; records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Request(self.path, headers))
                route = server.routes.get(self.path, Route(404, b"not found"))
                if route.delay:
                    server.stopping.wait(route.delay)
                not_modified = (
                    (route.etag and headers.get("if-none-match") == route.etag)
                    or (route.last_modified
                        and headers.get("if-modified-since") == route.last_modified))
                status = 304 if not_modified else route.status
                self.send_response(status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                body = b"" if status == 304 else route.body
                if route.content_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The client may have given up (timeout, size limit): some tests want exactly that.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={
            "poll_interval": 0.05}, daemon=True)

    def route(self, path: str, body: bytes | str = b"", **kwargs: object) -> str:
        """Serve BODY on PATH; returns the full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


# --- feed documents ----------------------------------------------------------------------------


def _rfc822(moment: datetime | str) -> str:
    return moment if isinstance(moment, str) else format_datetime(moment.astimezone(UTC), True)


def make_rss(items: list[dict], *, title: str = "Test news", prolog: str = "") -> bytes:
    """An RSS 2.0 document; item keys: title, link, guid, published, description (HTML)."""
    parts = []
    for given in items:
        item = {k: v for k, v in given.items() if v is not None}  # None: leave the element out
        xml = ["<item>"]
        if "title" in item:
            xml.append(f"<title>{escape(item['title'])}</title>")
        if "link" in item:
            xml.append(f"<link>{escape(item['link'])}</link>")
        if "guid" in item:
            xml.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        if "published" in item:
            xml.append(f"<pubDate>{_rfc822(item['published'])}</pubDate>")
        if "description" in item:
            xml.append(f"<description>{escape(item['description'])}</description>")
        parts.append("".join(xml) + "</item>")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example.org/</link>"
        f"<description>Test feed</description>{''.join(parts)}</channel></rss>\n"
    ).encode()


def make_atom(entries: list[dict], *, title: str = "Test events") -> bytes:
    """An Atom document; entry keys: title, link, id, published (ISO), summary (HTML)."""
    parts = []
    for given in entries:
        entry = {k: v for k, v in given.items() if v is not None}
        xml = ["<entry>"]
        if "title" in entry:
            xml.append(f'<title type="html">{escape(entry["title"])}</title>')
        if "id" in entry:
            xml.append(f"<id>{escape(entry['id'])}</id>")
        if "link" in entry:
            xml.append(f'<link rel="alternate" href={quoteattr(entry["link"])}/>')
        if "published" in entry:
            xml.append(f"<published>{entry['published']}</published>"
                       f"<updated>{entry['published']}</updated>")
        if "summary" in entry:
            xml.append(f'<summary type="html">{escape(entry["summary"])}</summary>')
        parts.append("".join(xml) + "</entry>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>tag:events.example.org,2026:events</id>"
        f"<updated>2026-11-01T00:00:00Z</updated>{''.join(parts)}</feed>\n"
    ).encode()


@pytest.fixture
def rss() -> Callable[..., bytes]:
    return make_rss


@pytest.fixture
def atom() -> Callable[..., bytes]:
    return make_atom


# --- a small project in tmp_path ---------------------------------------------------------------

CONFIG_TEMPLATE = """\
[newsletter]
name = "IP for Business"
from = "IP for Business <newsletter@ipbusiness.example.org>"
reply_to = "sme-team@ipbusiness.example.org"
base_url = "https://ipbusiness.example.org/newsletter"
list_id = "ip-for-business.ipbusiness.example.org"
default_language = "en"
timezone = "Europe/Zurich"
organisation = "the SME Programme of the IP for Business Organization"
postal_address = "IP for Business, 34 chemin des Colombettes, 1211 Geneva 20, Switzerland"
reason = "You receive this email because you subscribed to IP for Business."

{feeds}
[network]
allow_hosts = ["127.0.0.1"]  # the tests' feed servers; an operator's intranet host likewise

[subscribers]
files = []

[store]
path = "newsletter.db"

[delivery]
connections = 2
rate_per_second = 0
"""

DRAFT_BODY = """\
Welcome to the test issue. It has [a link](https://ipbusiness.example.org/about).

## Trademarks for small exporters

Register before you ship.

- Search the target markets.
- Check the goods and services.
"""


def feed_table(name: str, url: str, section: str, *, kind: str = "news", max_items: int = 5,
               keywords: list[str] | None = None) -> str:
    lines = ["[[feeds]]", f'name = "{name}"', f'url = "{url}"', f'section = "{section}"',
             f'kind = "{kind}"', f"max_items = {max_items}"]
    if keywords is not None:
        lines.append("keywords = [" + ", ".join(f'"{k}"' for k in keywords) + "]")
    return "\n".join(lines) + "\n\n"


def front_matter(**fields: object) -> str:
    """YAML front matter lines; each value written as JSON, which YAML reads as is."""
    lines = ["---"]
    for key, value in fields.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n---\n\n"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


class Project:
    """A throwaway newsletter project: config, templates, the draft template, drafts."""

    def __init__(self, root: Path, server: FeedServer, capsys: pytest.CaptureFixture) -> None:
        self.root = root
        self.server = server
        self._capsys = capsys
        root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(REPO / "templates", root / "templates")
        (root / "issues").mkdir()
        shutil.copy(SAMPLE_ISSUES / "_template.md", root / "issues" / "_template.md")
        news = server.route("/news.xml", (REPO / "feeds" / "news.xml").read_bytes(),
                            headers={"Content-Type": "application/rss+xml"})
        events = server.route("/events.xml", (REPO / "feeds" / "events.xml").read_bytes(),
                              headers={"Content-Type": "application/atom+xml"})
        self.write_config(feed_table("news", news, "News in brief", max_items=5)
                          + feed_table("events", events, "Upcoming events", kind="events",
                                       max_items=4))

    feed_table = staticmethod(feed_table)

    @property
    def config_path(self) -> Path:
        return self.root / "newsletter.toml"

    @property
    def issues(self) -> Path:
        return self.root / "issues"

    def write_config(self, feeds: str) -> Path:
        self.config_path.write_text(CONFIG_TEMPLATE.format(feeds=feeds), encoding="utf-8")
        return self.config_path

    def config(self):  # noqa: ANN201 - newsletter.config.Config
        from newsletter.config import load_config

        return load_config(self.config_path)

    def draft(self, issue: str = "2026-11", body: str = DRAFT_BODY, **fields: object) -> Path:
        """Write issues/ISSUE.md; front matter defaults to a ready issue sent 5 Nov 09:00."""
        defaults: dict[str, object] = {
            "subject": "Exporting soon? Protect your brand",
            "preheader": "Trademarks abroad, and what it costs.",
            "status": "ready",
            "send_at": f"{issue}-05T09:00",
        }
        defaults.update(fields)
        path = self.issues / f"{issue}.md"
        path.write_text(front_matter(**defaults) + body, encoding="utf-8")
        return path

    def copy_sample_issue(self) -> Path:
        """The shipped sample: issues/2026-11.md and its hand-checked snapshot."""
        shutil.copy(SAMPLE_ISSUES / "2026-11.md", self.issues / "2026-11.md")
        shutil.copy(SAMPLE_ISSUES / "2026-11.items.yaml", self.issues / "2026-11.items.yaml")
        return self.issues / "2026-11.md"

    def load_draft(self, issue: str = "2026-11"):  # noqa: ANN201 - newsletter.compose.drafts.Draft
        from newsletter.compose.drafts import load_draft

        config = self.config()
        return load_draft(self.issues / f"{issue}.md", timezone=config.timezone,
                          default_language=config.default_language)

    def connect(self):  # noqa: ANN201 - sqlite3.Connection
        from newsletter.store.connect import open_store

        return open_store(self.root / "newsletter.db")

    def cli(self, *args: str) -> CliResult:
        """Run `newsletter --config PROJECT/newsletter.toml ARGS` in this process."""
        from newsletter.cli.main import main

        self._capsys.readouterr()
        code = main(["--config", str(self.config_path), *args])
        captured = self._capsys.readouterr()
        return CliResult(code, captured.out, captured.err)


@pytest.fixture
def project(tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture) -> Project:
    return Project(tmp_path / "project", feed_server, capsys)


def run_newsletter(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script in a child process, as cron would run it."""
    return subprocess.run([str(NEWSLETTER_SCRIPT), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture
def newsletter_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    if not NEWSLETTER_SCRIPT.exists():
        pytest.fail(f"{NEWSLETTER_SCRIPT} is missing: run `make test` to install the package")
    return run_newsletter


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    """Skip where Debian's chromium is missing, except in CI, where a skip would hide a gap."""
    problem = ""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        problem = "Chromium not found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; browser tests must run in CI")
        pytest.skip(problem)
    return CHROMIUM


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    """The fault table (tests/faults_table.py), whenever fault cases ran."""
    from faults_table import ROWS, render

    if ROWS:
        terminalreporter.write_sep("=", "fault cases")
        terminalreporter.write_line(render())


from conftest_delivery import *  # noqa: E402,F401,F403
from pg_cluster import pg_cluster, pg_url, store_url  # noqa: E402,F401 - the PostgreSQL tests
