"""Fixtures for the delivery tests: a small project on disk and a scriptable SMTP server."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sample_issues import SAMPLE_ISSUES
from smtp_server import Script, ScriptedServer

REPO = Path(__file__).resolve().parent.parent


@dataclass
class DeliveryProject:
    root: Path
    addresses: list[str]

    @property
    def config(self) -> Path:
        return self.root / "newsletter.toml"

    @property
    def db(self) -> Path:
        return self.root / "newsletter.db"

    def states(self, issue: str = "2026-11") -> dict[str, str]:
        with sqlite3.connect(self.db) as conn:
            return dict(conn.execute(
                "SELECT s.email, d.state FROM deliveries d JOIN subscribers s "
                "ON s.id = d.subscriber_id WHERE d.issue = ?", (issue,)).fetchall())

    def cli(self, *args: str) -> int:
        from newsletter.cli.main import main

        return main(["--config", str(self.config), *args])


def set_batch_size(project: DeliveryProject, size: int) -> None:
    """[delivery] batch_size = size: the rows a worker claims in one commit."""
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace("[delivery]\n", f"[delivery]\nbatch_size = {size}\n",
                                           1), encoding="utf-8")


def make_delivery_project(root: Path, count: int, *, connections: int = 2,
                          rate: float = 0, batch_size: int | None = None) -> DeliveryProject:
    """The sample newsletter with `count` subscribers and the sample issue (ready, due);
    batch_size: [delivery] batch_size (None: the program's default)."""
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "issues").mkdir()
    for name in ("2026-11.md", "2026-11.items.yaml", "_template.md"):
        shutil.copy(SAMPLE_ISSUES / name, root / "issues" / name)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace("connections = 2", f"connections = {connections}")
    # The delivery tests choose SMTP or the Maildir by NEWSLETTER_SMTP_URL (the rule when the
    # file names no transport); the sample's transport = "maildir" would refuse the URL.
    config = config.replace('transport = "maildir"\n', "")
    config = config.replace("rate_per_second = 0 ", f"rate_per_second = {rate} ")
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    shutil.copytree(REPO / "feeds", root / "feeds")
    (root / "subscribers").mkdir()
    addresses = [f"reader{n:03d}@example.com" for n in range(count)]
    rows = ["email,name,language,tags"] + [f"{a},Reader {n},en," for n, a in enumerate(addresses)]
    (root / "subscribers" / "sample.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    project = DeliveryProject(root, addresses)
    if batch_size is not None:
        set_batch_size(project, batch_size)
    return project


@pytest.fixture
def delivery_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryProject:
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret")
    monkeypatch.delenv("NEWSLETTER_SMTP_URL", raising=False)
    return make_delivery_project(tmp_path / "nl", 6)


@pytest.fixture
def subscribed(delivery_project: DeliveryProject) -> DeliveryProject:
    """The delivery project with its sample CSV imported (the web tests' starting point)."""
    assert delivery_project.cli("subscribers", "import",
                                str(delivery_project.root / "subscribers" / "sample.csv")) == 0
    return delivery_project


@pytest.fixture
def smtp_script() -> Script:
    return Script()


@pytest.fixture
def smtp_server(smtp_script: Script, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    server = ScriptedServer(smtp_script)
    server.start()
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", server.url)
    try:
        yield server
    finally:
        server.stop()
