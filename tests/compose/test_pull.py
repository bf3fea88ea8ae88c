"""`newsletter pull`: the item snapshot beside the draft, windows that tile, hand edits stick."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.pull import issue_window
from newsletter.compose.snapshot import read_snapshot
from newsletter.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SAMPLE_SNAPSHOT = SAMPLE_ISSUES / "2026-11.items.yaml"


@pytest.fixture
def project(project):  # noqa: ANN001, ANN201
    """The conftest project with its feed server allowed, as an operator allows an intranet
    host: [network] allow_hosts = ["127.0.0.1"]."""
    def allow_local() -> None:
        text = project.config_path.read_text(encoding="utf-8")
        if "[network]" not in text:
            project.config_path.write_text(text + '\n[network]\nallow_hosts = ["127.0.0.1"]\n',
                                           encoding="utf-8")

    write_config = project.write_config

    def write_allowing_local(feeds: str) -> Path:
        path = write_config(feeds)
        allow_local()
        return path

    project.write_config = write_allowing_local
    allow_local()
    return project


def test_without_the_allowlist_a_feed_on_loopback_is_refused_and_the_pull_goes_on(project):
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text.replace('allow_hosts = ["127.0.0.1"]', "allow_hosts = []"),
                                   encoding="utf-8")
    sample_draft(project)
    result = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")
    assert result.code == 0
    news, events = project.server.url("/news.xml"), project.server.url("/events.xml")
    assert result.err == (
        f"newsletter: warning: feed news: not fetched: {news}: a loopback address; allow it in "
        "newsletter.toml [network] allow_hosts\n"
        f"newsletter: warning: feed events: not fetched: {events}: a loopback address; allow "
        "it in newsletter.toml [network] allow_hosts\n")
    assert "pulled 0 items for 2026-11" in result.out
    assert project.server.requests == []


def sample_draft(project) -> Path:
    path = project.issues / "2026-11.md"
    shutil.copy(SAMPLE_ISSUES / "2026-11.md", path)
    return path


def test_pull_writes_the_snapshot_beside_the_draft(project):
    sample_draft(project)
    result = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")
    assert result.code == 0, result.err
    snapshot = project.issues / "2026-11.items.yaml"
    # The shipped sample snapshot was pulled from the same feeds at the same moment.
    assert read_snapshot(snapshot) == read_snapshot(SAMPLE_SNAPSHOT)
    text = snapshot.read_text(encoding="utf-8")
    assert text.startswith("# Feed items for issue 2026-11, pulled by `newsletter pull` at "
                           "2026-11-22T11:00:00Z.\n# Edit freely before sending")
    assert "title: Startup IP clinic opens in Zürich\n" in text  # readable, not \u-escaped
    lines = result.out.splitlines()
    assert lines[:2] == ["  News in brief: 5 items", "  Upcoming events: 4 items"]
    assert lines[2].startswith(
        "pulled 9 items for 2026-11 (window 2026-10-01 00:00 to 2026-11-05 08:00 UTC) "
        f"into {snapshot}, 0 warning(s), in ")
    assert len(lines) == 3
    assert result.err == ""


def test_pull_warns_about_a_broken_feed_on_stderr_and_still_writes_the_others(project):
    sample_draft(project)
    project.server.route("/events.xml", b"gone", status=404)
    result = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")
    assert result.code == 0
    assert result.err == (f"newsletter: warning: feed events: HTTP 404 from "
                          f"{project.server.url('/events.xml')}\n")
    snap = read_snapshot(project.issues / "2026-11.items.yaml")
    assert {i.section for i in snap.items} == {"News in brief"}
    assert "1 warning(s)" in result.out


def test_pull_with_a_draft_naming_an_unknown_feed_exits_2(project):
    project.draft(feeds=["news", "podcasts"])
    result = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")
    assert result.code == 2
    assert result.err == (
        f"newsletter: {project.issues / '2026-11.md'}: front matter: 'feeds' names unknown "
        "feed(s) podcasts (configured: news, events)\n")
    assert not (project.issues / "2026-11.items.yaml").exists()


def test_first_window_starts_on_the_first_of_the_previous_month(project):
    project.draft(send_at="2026-11-05T09:00")
    start, end = issue_window(project.load_draft(), datetime(2026, 11, 22, tzinfo=UTC),
                              project.issues)
    assert start == datetime(2026, 10, 1, tzinfo=UTC)
    assert end == datetime(2026, 11, 5, 8, 0, tzinfo=UTC)  # 09:00 in Zurich


def test_window_ends_now_when_pulled_before_the_send_time(project):
    project.draft(send_at="2026-11-05T09:00")
    now = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    assert issue_window(project.load_draft(), now, project.issues)[1] == now


def test_next_issue_window_starts_where_the_previous_snapshot_ended(project, rss):
    boundary = datetime(2026, 11, 5, 8, 0, tzinfo=UTC)
    url = project.server.route("/news.xml", rss([
        {"title": "Just before", "link": "https://news.example.org/before", "guid": "before",
         "published": datetime(2026, 11, 5, 7, 59, 59, tzinfo=UTC)},
        {"title": "On the boundary", "link": "https://news.example.org/on", "guid": "on",
         "published": boundary},
        {"title": "Later", "link": "https://news.example.org/later", "guid": "later",
         "published": datetime(2026, 11, 20, tzinfo=UTC)},
    ]))
    project.write_config(project.feed_table("news", url, "News"))
    project.draft("2026-11", send_at="2026-11-05T09:00")
    project.draft("2026-12", send_at="2026-12-03T09:00")

    november = project.cli("pull", "2026-11", "--now", "2026-11-22T12:00")
    december = project.cli("pull", "2026-12", "--now", "2026-12-10T12:00")
    assert november.code == december.code == 0

    nov = read_snapshot(project.issues / "2026-11.items.yaml")
    dec = read_snapshot(project.issues / "2026-12.items.yaml")
    assert dec.window_start == nov.window_end == boundary
    assert [i.id for i in nov.items] == ["before"]
    assert [i.id for i in dec.items] == ["later", "on"]


def test_item_in_an_earlier_snapshot_is_not_pulled_again(project, rss):
    undated = {"title": "Evergreen guide", "link": "https://news.example.org/guide",
               "guid": "guide"}
    url = project.server.route("/news.xml", rss([undated]))
    project.write_config(project.feed_table("news", url, "News"))
    project.draft("2026-11")
    project.draft("2026-12", send_at="2026-12-03T09:00")
    assert project.cli("pull", "2026-11", "--now", "2026-11-22T12:00").code == 0
    assert project.cli("pull", "2026-12", "--now", "2026-12-10T12:00").code == 0
    assert [i.id for i in read_snapshot(project.issues / "2026-11.items.yaml").items] == ["guide"]
    assert read_snapshot(project.issues / "2026-12.items.yaml").items == ()


def edit_snapshot(project, change) -> Path:  # noqa: ANN001 - change(data) edits the YAML in place
    path = project.issues / "2026-11.items.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_hand_edits_to_the_snapshot_are_what_build_renders(project, tmp_path):
    project.copy_sample_issue()

    def change(data: dict) -> None:
        del data["items"][0]  # "Startup IP clinic opens in Zürich"
        data["items"][0]["title"] = "Coffee growers win a geographical indication"

    edit_snapshot(project, change)
    out = tmp_path / "preview"
    result = project.cli("build", "2026-11", "--no-screenshots", "--out", str(out))
    assert result.code == 0, result.err
    html = (out / "email.html").read_text(encoding="utf-8")
    text = (out / "email.txt").read_text(encoding="utf-8")
    for part in (html, text):
        assert "Startup IP clinic" not in part
        assert "Coffee growers win a geographical indication" in part
        assert "From farm to café" not in part
    assert "8 feed items" in result.out
    assert project.server.requests == []  # the snapshot was used as it is: no feed was fetched


def test_hand_edited_summary_is_sanitised_again(project, tmp_path):
    project.copy_sample_issue()

    def change(data: dict) -> None:
        data["items"][0]["summary"] = ('<p onmouseover="steal()">Hi <script>steal()</script>'
                                       '<a href="javascript:steal()">x</a></p>')

    edit_snapshot(project, change)
    out = tmp_path / "preview"
    assert project.cli("build", "2026-11", "--no-screenshots", "--out", str(out)).code == 0
    html = (out / "email.html").read_text(encoding="utf-8")
    assert "steal" not in html


def test_hand_edited_snapshot_with_a_bad_link_names_the_file_and_item(project, tmp_path):
    project.copy_sample_issue()
    path = edit_snapshot(project, lambda data: data["items"][1].update(
        link="javascript:alert(1)"))
    result = project.cli("build", "2026-11", "--no-screenshots", "--out", str(tmp_path / "o"))
    assert result.code == 2
    assert result.err == (f"newsletter: {path}: item 2: 'link' must be an absolute http(s) URL, "
                          "not 'javascript:alert(1)'\n")
    assert not (tmp_path / "o").exists()


def test_every_bad_snapshot_item_is_reported_at_once(project):
    project.copy_sample_issue()

    def change(data: dict) -> None:
        data["items"][0]["link"] = "/relative"
        del data["items"][3]["title"]
        data["items"][5]["kind"] = "podcast"

    path = edit_snapshot(project, change)
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert str(info.value) == (
        f"{path}: item 1: 'link' must be an absolute http(s) URL, not '/relative'; "
        "item 4: 'title' is missing; item 6: 'kind' must be news or events")


def test_snapshot_that_is_not_yaml_gives_its_line(project):
    project.copy_sample_issue()
    path = project.issues / "2026-11.items.yaml"
    path.write_text("issue: 2026-11\nitems:\n  - id: [unclosed\n    title: x\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert str(info.value).startswith(f"{path}:")
    assert "not valid YAML" in str(info.value)


def test_build_without_a_snapshot_pulls_first_and_says_so(project, tmp_path):
    sample_draft(project)
    result = project.cli("build", "2026-11", "--no-screenshots", "--out", str(tmp_path / "o"),
                         "--now", "2026-11-22T12:00")
    assert result.code == 0, result.err
    snapshot = project.issues / "2026-11.items.yaml"
    assert result.out.splitlines()[0] == f"no snapshot yet: pulled 9 items into {snapshot}"
    assert read_snapshot(snapshot) == read_snapshot(SAMPLE_SNAPSHOT)
