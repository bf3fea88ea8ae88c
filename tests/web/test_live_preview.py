"""`newsletter preview`: the real command in a child process, its page in headless Chromium.
The page must follow saved files by itself: the tests edit files and never reload it."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import NEWSLETTER_SCRIPT, Project
from sample_issues import SAMPLE_ISSUES

from newsletter.compose.browser import BrowserUnavailable, open_browser
from newsletter.web.live_preview import CachedResolver, LivePreview, block_unreachable_images

FOLLOW_SECONDS = 8.0  # the page polls every 0.7 s; the rest is slack for a busy machine


@dataclass
class Preview:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)


@contextmanager
def running_preview(project: Project, issue: str = "2026-11", *args: str) -> Iterator[Preview]:
    """`newsletter preview ISSUE --port 0` as a child process; stopped with SIGTERM after."""
    process = subprocess.Popen(
        [str(NEWSLETTER_SCRIPT), "--config", str(project.config_path), "preview", issue,
         "--port", "0", *args], cwd=project.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "NEWSLETTER_SECRET": ""})
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    first = process.stdout.readline() if ready else ""
    if "previewing" not in first:
        process.kill()
        pytest.fail(f"preview did not start: {first!r} {process.communicate()}")
    url = first.split(" at ", 1)[1].split(";", 1)[0]
    preview = Preview(url.split("?", 1)[0].rstrip("/"), process, [first])
    # Keep reading, or a full pipe would block the server's say() lines.
    reader = threading.Thread(target=lambda: preview.lines.extend(process.stdout or ()),
                              daemon=True)
    reader.start()
    try:
        yield preview
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        reader.join(timeout=5)
        assert code == 0, process.stderr.read() if process.stderr else code
        assert preview.lines[-1] == f"preview of {issue.split('.')[0]} stopped\n"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        opening = open_browser()
        opened = opening.__enter__()
    except BrowserUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; browser tests must run in CI")
        pytest.skip(str(exc))
    try:
        yield opened
    finally:
        opening.__exit__(None, None, None)


@pytest.fixture
def sample(project: Project) -> Project:
    """The shipped sample issue (en) and its French edition, each with its snapshot."""
    project.copy_sample_issue()
    for name in ("2026-11.fr.md", "2026-11.fr.items.yaml"):
        shutil.copy(SAMPLE_ISSUES / name, project.issues / name)
    return project


def wait_for(check: Callable[[], Any], what: str, seconds: float = FOLLOW_SECONDS) -> Any:
    """Poll CHECK until it returns something true. While the page reloads, reading it may
    fail (the document it asked is gone): that is not an answer yet."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except Exception as exc:  # noqa: BLE001 - Playwright's navigation errors vary
            last = exc
        time.sleep(0.1)
    pytest.fail(f"not within {seconds} s: {what} (last error: {last})")


def save(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def frame_text(page: Any, frame_id: str) -> str:
    return page.frame_locator(f"#{frame_id}").locator("body").inner_text(timeout=2000)



@pytest.mark.browser
def test_the_page_shows_the_edition_at_both_widths_and_follows_a_saved_draft(
        chromium: Path, sample: Project, browser: Any) -> None:
    draft = sample.issues / "2026-11.md"
    with running_preview(sample) as preview:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        assert page.locator("#subject").inner_text() == \
            "Exporting soon? Protect your brand before you ship"
        for frame_id, width in (("desktop", 600), ("phone", 375)):
            assert "Trademarks for small exporters" in frame_text(page, frame_id)
            inner = page.frame_locator(f"#{frame_id}").locator("html").evaluate(
                "() => window.innerWidth")
            assert width - 20 <= inner <= width  # less a scroll bar, if the frame shows one
        assert "Trademarks for small exporters" in page.locator("#text").inner_text()
        # check's findings follow the edition into their box, the sample's with no error
        counts = wait_for(lambda: page.locator("#findings-box .counts").inner_text(
            timeout=500), "check's findings")
        assert counts.startswith("0 error(s)")
        assert page.locator("#findings li.error").count() == 0
        version = page.locator("html").get_attribute("data-version")
        # each frame as tall as its email, so the page scrolls as one (no scroll box inside)
        wait_for(lambda: page.evaluate("""() => [...document.querySelectorAll('iframe.email')]
            .every(f => f.getAttribute('data-fitted') === 'yes' && f.offsetHeight >=
                   f.contentDocument.documentElement.scrollHeight)"""), "frames fitted")
        page.evaluate("window.scrollTo(0, 1200)")

        save(draft, "## Trademarks for small exporters", "## Brand names for small exporters")
        save(draft, "Protect your brand before you ship", "Register your brand abroad first")
        started = time.monotonic()
        wait_for(lambda: page.locator("#subject").inner_text(timeout=500)
                 == "Exporting soon? Register your brand abroad first", "the new subject")
        followed = time.monotonic() - started
        wait_for(lambda: "Brand names for small exporters" in frame_text(page, "desktop")
                 and "Brand names for small exporters" in frame_text(page, "phone"),
                 "the new heading in both frames")
        assert "Brand names for small exporters" in page.locator("#text").inner_text()
        assert page.locator("html").get_attribute("data-version") != version
        # where the editor was reading is where the reloaded page opens
        wait_for(lambda: abs(page.evaluate("window.scrollY") - 1200) < 2, "the scroll kept")
        page.close()
    assert followed < FOLLOW_SECONDS
    assert any(line.startswith("rebuilt 2026-11 (en)") for line in preview.lines[1:])
    assert any(line.startswith("checked 2026-11 (en)") for line in preview.lines[1:])


@pytest.mark.browser
def test_a_broken_draft_shows_its_error_line_and_a_fixed_one_brings_the_edition_back(
        chromium: Path, sample: Project, browser: Any) -> None:
    draft = sample.issues / "2026-11.md"
    good = draft.read_text(encoding="utf-8")
    with running_preview(sample) as preview:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        page.locator("#desktop").wait_for()
        save(draft, 'before you ship"', 'before you ship" [')
        errors = wait_for(lambda: page.locator("#errors").inner_text(timeout=500),
                          "the draft's error on the page")
        # the line of the subject, as `check` names it
        assert f"{draft}:2: error: front matter: not valid YAML" in errors
        assert page.locator("#desktop").count() == 0
        draft.write_text(good.replace("before you ship", "before you sell"), encoding="utf-8")
        wait_for(lambda: "before you sell" in page.locator("#subject").inner_text(timeout=500),
                 "the edition back after the fix")
        assert page.locator("#errors").count() == 0
        # The subject shows before the frames have loaded their new document (CI read an
        # empty body once): the phone frame is waited for, not read once.
        wait_for(lambda: "Trademarks for small exporters" in frame_text(page, "phone"),
                 "the phone frame's edition after the fix")
        page.close()


@pytest.mark.browser
def test_templates_and_config_are_followed_and_a_missing_snapshot_is_named(
        chromium: Path, sample: Project, browser: Any) -> None:
    with running_preview(sample) as preview:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        assert "IP for Business <newsletter@" in page.locator(".envelope").inner_text()
        save(sample.config_path, 'from = "IP for Business', 'from = "IP Monthly')
        wait_for(lambda: "IP Monthly <newsletter@" in page.locator(".envelope").inner_text(
            timeout=500), "the config's new name")
        with (sample.root / "templates" / "email.txt.j2").open("a", encoding="utf-8") as f:
            f.write("Printed on recycled electrons.\n")
        wait_for(lambda: "Printed on recycled electrons." in page.locator("#text").inner_text(
            timeout=500), "the text template's new line")
        assert page.locator("#no-snapshot").count() == 0
        (sample.issues / "2026-11.items.yaml").unlink()
        notice = wait_for(lambda: page.locator("#no-snapshot").inner_text(timeout=500),
                          "the missing snapshot")
        assert "no snapshot: run newsletter pull 2026-11" in notice
        wait_for(lambda: "no snapshot" in page.locator("#findings").inner_text(timeout=500),
                 "check's no-snapshot error")
        page.close()


@pytest.mark.browser
def test_every_language_edition_is_one_click_away(
        chromium: Path, sample: Project, browser: Any) -> None:
    with running_preview(sample) as preview:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        links = page.locator(".editions a")
        assert [links.nth(i).get_attribute("hreflang") for i in range(links.count())] == ["fr"]
        page.get_by_role("link", name="Français (fr)").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.locator("#subject").inner_text().startswith("Vous exportez bientôt")
        assert "Bienvenue" in frame_text(page, "desktop")
        # the French page follows the French draft, and stays French when it reloads itself
        save(sample.issues / "2026-11.fr.md", "Bienvenue dans", "Bonjour et bienvenue dans")
        wait_for(lambda: "Bonjour et bienvenue" in frame_text(page, "phone"), "the fr edit")
        assert page.locator("html").get_attribute("lang") == "fr"
        # a link in the email opens a tab of its own, not inside the frame
        with page.expect_popup() as popup:
            page.frame_locator("#desktop").locator("a[href^='https://']").first.click()
        popup.value.close()
        assert "Bonjour et bienvenue" in frame_text(page, "desktop")
        page.get_by_role("link", name="English (en)").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        page.close()


@pytest.mark.browser
def test_an_image_subscribers_cannot_reach_is_a_check_error_and_is_not_fetched(
        chromium: Path, sample: Project, browser: Any) -> None:
    pixel = sample.server.route("/pixel.png", b"\x89PNG\r\n\x1a\n",
                                headers={"Content-Type": "image/png"})
    save(sample.issues / "2026-11.md", "## Trademarks for small exporters",
         f"![A chart of filing costs]({pixel})\n\n## Trademarks for small exporters")
    with running_preview(sample) as preview:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        findings = wait_for(lambda: page.locator("#findings").inner_text(timeout=500),
                            "check's findings")
        assert f"image '{pixel}'" in findings and "subscribers cannot reach it" in findings
        image = page.frame_locator("#desktop").get_by_alt_text("A chart of filing costs")
        assert image.get_attribute("src") == ""
        assert image.get_attribute("data-unreachable") == pixel
        page.wait_for_load_state("networkidle")
        page.close()
    assert sample.server.requests_for("/pixel.png") == []


def test_head_csp_and_a_foreign_host_header(sample: Project) -> None:
    with running_preview(sample) as preview:
        head = httpx.head(preview.url + "/", timeout=30)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/html")
        page_csp = head.headers["content-security-policy"]
        assert "script-src 'self'" in page_csp and "unsafe-inline" not in page_csp.split(
            "script-src", 1)[1].split(";", 1)[0]
        email = httpx.get(preview.url + "/email.html?lang=fr", timeout=30)
        assert email.status_code == 200 and 'lang="fr"' in email.text
        csp = email.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'") and "script-src" not in csp
        unknown = httpx.get(preview.url + "/email.html?lang=../../etc/passwd", timeout=30)
        assert unknown.status_code == 200 and 'lang="en"' in unknown.text
        rebound = httpx.get(preview.url + "/", headers={"Host": "drafts.attacker.example"},
                            timeout=30)
        assert rebound.status_code == 400 and "Exporting" not in rebound.text
        version = httpx.get(preview.url + "/version", timeout=30).text
        assert version == httpx.get(preview.url + "/version", timeout=30).text


def test_a_busy_port_is_one_line_and_exit_1(sample: Project) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(NEWSLETTER_SCRIPT), "--config", str(sample.config_path), "preview", "2026-11",
             "--port", str(port)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"newsletter: 127.0.0.1:{port}: cannot listen: Address already in use"]


def test_a_missing_draft_or_a_bad_issue_is_one_line_and_exit_2(sample: Project) -> None:
    for issue, expected in (("2027-01", "no draft: start one with `newsletter new 2027-01`"),
                            ("november", "issue must look like YYYY-MM")):
        done = subprocess.run(
            [str(NEWSLETTER_SCRIPT), "--config", str(sample.config_path), "preview", issue],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2
        [line] = done.stderr.strip().splitlines()
        assert expected in line


@pytest.mark.browser
def test_a_script_in_the_email_does_not_run_in_the_preview(
        chromium: Path, sample: Project, browser: Any) -> None:
    # Drafts are sanitised; a template is the editor's own, and still gets no script here.
    template = sample.root / "templates" / "base.html.j2"
    save(template, "</body>", "<script>document.body.setAttribute('data-ran', 'yes')</script>"
         "</body>")
    with running_preview(sample) as preview:
        assert "data-ran" in httpx.get(preview.url + "/email.html", timeout=30).text
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(preview.url + "/")
        for frame_id in ("desktop", "phone"):
            frame = page.locator(f"#{frame_id}")
            assert "allow-scripts" not in (frame.get_attribute("sandbox") or "allow-scripts")
            body = page.frame_locator(f"#{frame_id}").locator("body")
            assert "Trademarks for small exporters" in body.inner_text()
            assert body.get_attribute("data-ran") is None
        page.close()


# --- the state behind the page, in this process -------------------------------------------


def test_the_fingerprint_sees_a_save_in_the_same_instant_and_a_new_edition(
        sample: Project) -> None:
    preview = LivePreview(sample.config_path, "2026-11")
    draft = sample.issues / "2026-11.md"
    before, stat = preview.fingerprint(), draft.stat()
    draft.write_text(draft.read_text(encoding="utf-8") + "One more line.\n", encoding="utf-8")
    os.utime(draft, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a coarse clock: same mtime
    assert preview.fingerprint() != before
    assert preview.languages("en") == ("en", "fr")
    after_save = preview.fingerprint()
    shutil.copy(SAMPLE_ISSUES / "2026-11.es.md", sample.issues / "2026-11.es.md")
    assert preview.fingerprint() != after_save
    assert preview.languages("en") == ("en", "es", "fr")
    (sample.issues / "2026-12.md").write_text("another issue\n", encoding="utf-8")
    assert preview.languages("en") == ("en", "es", "fr")


def test_a_broken_config_is_shown_as_the_error_and_its_fix_brings_the_edition_back(
        sample: Project) -> None:
    preview = LivePreview(sample.config_path, "2026-11")
    assert preview.rendered().subject.startswith("Exporting soon?")
    good = sample.config_path.read_text(encoding="utf-8")
    sample.config_path.write_text(good.replace("[newsletter]", "[newsletter", 1),
                                  encoding="utf-8")
    broken = preview.rendered()
    assert broken.html == "" and broken.errors
    assert str(sample.config_path) in broken.errors[0]
    sample.config_path.write_text(good + "\n", encoding="utf-8")
    back = preview.rendered("fr")
    assert back.errors == () and back.language == "fr" and "Bienvenue" in back.html


def test_rebuilds_once_per_change_not_once_per_request(sample: Project) -> None:
    rebuilt = []
    preview = LivePreview(sample.config_path, "2026-11", on_rebuild=rebuilt.append)
    first = preview.rendered()
    assert preview.rendered() is first and preview.rendered("en") is first
    assert preview.rendered("xx") is first  # an unknown language is the default edition
    assert len(rebuilt) == 1
    save(sample.issues / "2026-11.md", "Welcome to the November issue",
         "Welcome to the late November issue")
    assert "late November" in preview.rendered().html
    assert len(rebuilt) == 2


def resolver(answers: dict[str, list[str]]):  # noqa: ANN201 - a Resolver
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]
    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def test_images_subscribers_cannot_reach_are_left_broken_and_the_others_kept() -> None:
    page = ('<p><img src="https://cdn.ipbusiness.org/a.png?x=1&amp;y=2" alt="a">'
            '<img alt="b" src="http://127.0.0.1:8080/unsubscribe/x">'
            '<img src="https://printer.local/c.png" alt="c">'
            '<img src="https://intranet.ipbusiness.org/d.png" alt="d"></p>')
    dns = resolver({"cdn.ipbusiness.org": ["93.184.216.34"],
                    "intranet.ipbusiness.org": ["10.1.2.3"]})
    shown = block_unreachable_images(page, dns)
    assert '<img src="https://cdn.ipbusiness.org/a.png?x=1&amp;y=2" alt="a">' in shown
    for url in ("http://127.0.0.1:8080/unsubscribe/x", "https://printer.local/c.png",
                "https://intranet.ipbusiness.org/d.png"):
        assert f'src="{url}"' not in shown and f'src="" data-unreachable="{url}"' in shown


def test_dns_answers_are_kept_for_a_minute_failures_too() -> None:
    dns = resolver({"cdn.ipbusiness.org": ["93.184.216.34"]})
    cached = CachedResolver(dns, seconds=60)
    assert cached("cdn.ipbusiness.org", 443) == ["93.184.216.34"]
    assert cached("cdn.ipbusiness.org", 443) == ["93.184.216.34"]
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            cached("gone.ipbusiness.org", 443)
    assert dns.asked == ["cdn.ipbusiness.org", "gone.ipbusiness.org"]
    assert CachedResolver(dns, seconds=0)("cdn.ipbusiness.org", 443) == ["93.184.216.34"]
    assert len(dns.asked) == 3


def test_the_findings_are_checks_own_for_the_files_as_they_are_now(sample: Project) -> None:
    from datetime import UTC, datetime

    from newsletter.deliver.issue_check import check_edition

    preview = LivePreview(sample.config_path, "2026-11")
    save(sample.issues / "2026-11.md", "## Trademarks for small exporters",
         "![](https://printer.local/chart.png)\n\n## Trademarks for small exporters")
    shown = preview.rendered()
    found = wait_for(lambda: preview.findings(shown), "the findings", seconds=60)
    expected = check_edition(sample.config(), sample.issues / "2026-11.md", datetime.now(UTC))
    assert [str(p) for p in found.problems] == [str(p) for p in expected.problems]
    assert found.error_count >= 2  # no alt text, and a host subscribers cannot reach
    assert preview.findings(shown) is found  # worked out once
    save(sample.issues / "2026-11.md", "![](https://printer.local/chart.png)", "")
    newer = preview.rendered()
    assert newer.fingerprint != shown.fingerprint
    fixed = wait_for(lambda: preview.findings(newer), "the new findings", seconds=60)
    assert fixed.error_count == 0
