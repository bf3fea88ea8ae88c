"""The live preview's state: which files it follows, and each edition as the sample reader gets
it, rebuilt only when a followed file changed; `check`'s findings beside it (live_findings)."""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.audience.tokens import secret_from_env
from newsletter.compose.drafts import check_issue_id, draft_path
from newsletter.compose.edition import compose
from newsletter.compose.live_findings import Checker, Findings, Key
from newsletter.compose.preview import SAMPLE_EMAIL, sample_parts
from newsletter.compose.snapshot import snapshot_path
from newsletter.config import load_config
from newsletter.deliver.issue_check import check_edition, draft_error_lines
from newsletter.deliver.send import unsubscribe_url_maker
from newsletter.errors import DraftError, NewsletterError
from newsletter.netguard import Resolver, system_resolver
from newsletter.public_names import local_name_reason, private_only_hosts

_IMG_SRC_RE = re.compile(r'(<img\b[^>]*?\ssrc=")([^"]*)(")', re.IGNORECASE)


@dataclass(frozen=True)
class Rendered:
    """One language edition of the issue as the preview page shows it."""

    fingerprint: str  # of the followed files, taken before they were read
    issue: str
    language: str
    languages: tuple[str, ...]  # every edition of the issue, the default first
    subject: str = ""
    preheader: str = ""
    sender: str = ""
    html: str = ""  # personalised for the sample reader; unreachable images left broken
    text: str = ""
    errors: tuple[str, ...] = ()  # why there is no edition to show (draft, config, template)
    has_snapshot: bool = True
    seconds: float = 0.0  # how long the rebuild took


def followed_files(root: Path, config_file: Path, issue: str) -> list[Path]:
    """What the preview follows: the config, every template, and every file of the issue in
    issues/ (each edition's draft, snapshot and translation sidecar)."""
    files = [config_file]
    files += sorted(p for p in (root / "templates").rglob("*") if p.is_file())
    files += sorted((root / "issues").glob(f"{issue}.*"))
    return files


def fingerprint(files: list[Path]) -> str:
    """Changes when a file is saved, created or deleted; only stat()s, so polling it is cheap.
    Size as well as mtime: a save within the file system's timestamp granularity still shows."""
    digest = hashlib.sha256()
    for path in files:
        try:
            st = path.stat()
            digest.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
        except OSError:  # deleted between the listing and the stat: that is a change too
            digest.update(f"{path}\0gone\n".encode())
    return digest.hexdigest()[:16]


def block_unreachable_images(page: str, resolve: Resolver = system_resolver) -> str:
    """The HTML with every image whose host subscribers cannot reach (loopback, private or
    local-only) left without a source: they see a broken image there, and so does the editor.
    It also keeps the editor's browser from requesting addresses a feed item names."""
    hosts = {}
    for match in _IMG_SRC_RE.finditer(page):
        try:
            hosts[match.group(2)] = urlsplit(html.unescape(match.group(2))).hostname or ""
        except ValueError:
            hosts[match.group(2)] = ""
    private = private_only_hosts({h for h in hosts.values() if h}, resolve)

    def swap(match: re.Match[str]) -> str:
        host = hosts.get(match.group(2), "")
        if host and not (local_name_reason(host) or host in private):
            return match.group(0)
        # data-unreachable keeps the address visible in the page's source for the editor
        return f'{match.group(1)}" data-unreachable="{match.group(2)}{match.group(3)}'

    return _IMG_SRC_RE.sub(swap, page)


class CachedResolver:
    """DNS answers kept for a minute: the preview rebuilds on every save, and a lookup that
    hangs (no network) would otherwise hold up each rebuild, twice (check, image blocking)."""

    def __init__(self, resolve: Resolver, seconds: float = 60.0) -> None:
        self.resolve, self.seconds = resolve, seconds
        self._answers: dict[tuple[str, int], tuple[float, list[str] | OSError]] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            kept = self._answers.get((host, port))
        if kept is None or time.monotonic() - kept[0] > self.seconds:
            try:
                answer: list[str] | OSError = self.resolve(host, port)
            except OSError as exc:  # "no such name" is an answer worth keeping too
                answer = exc
            kept = (time.monotonic(), answer)
            with self._lock:
                self._answers[(host, port)] = kept
        if isinstance(kept[1], OSError):
            raise kept[1]
        return kept[1]


class LivePreview:
    """Builds each edition on request, once per fingerprint of the followed files."""

    def __init__(self, config_file: Path, issue: str, *,
                 on_rebuild: Callable[[Rendered], None] = lambda r: None,
                 on_checked: Callable[[Key, Findings], None] = lambda k, f: None,
                 resolve: Resolver = system_resolver) -> None:
        self.config_file = config_file.resolve()
        self.root = self.config_file.parent
        self.issue = check_issue_id(issue)
        self.on_rebuild, self.resolve = on_rebuild, CachedResolver(resolve)
        self._lock = threading.Lock()  # one rebuild at a time: the two frames ask together
        self._cache: dict[str, Rendered] = {}
        self._cached_fingerprint = ""
        self.checker = Checker(lambda f: f == self.fingerprint(), on_done=on_checked)

    def fingerprint(self) -> str:
        return fingerprint(followed_files(self.root, self.config_file, self.issue))

    def languages(self, default_language: str) -> tuple[str, ...]:
        found = {p.name.split(".")[1].lower() for p in (self.root / "issues").glob(
            f"{self.issue}.*.md") if p.name.count(".") == 2}
        return (default_language, *sorted(found - {default_language}))

    def rendered(self, language: str = "") -> Rendered:
        """The edition in LANGUAGE ("" or an unknown one: the default edition)."""
        with self._lock:
            current = self.fingerprint()
            if current != self._cached_fingerprint:
                self._cache, self._cached_fingerprint = {}, current
            if self._cache and language not in next(iter(self._cache.values())).languages:
                language = ""  # the default edition, as _build would make it: no second build
            if language in self._cache:
                return self._cache[language]
            result = self._build(current, language)
            self._cache[language] = self._cache[result.language] = result
            if result.languages[:1] == (result.language,):
                self._cache[""] = result
        self.on_rebuild(result)
        return result

    def findings(self, shown: Rendered) -> Findings | None:
        """check's findings for the edition SHOWN, or None while they are worked out."""
        if shown.errors:
            return Findings(())  # nothing rendered, nothing to check: the errors say it all

        def check() -> Findings:
            config = load_config(self.config_file)
            path = draft_path(config.issues_dir, self.issue, shown.language,
                              config.default_language)
            checked = check_edition(config, path, datetime.now(UTC), resolve=self.resolve)
            return Findings(checked.problems, checked.segments)

        return self.checker.get((shown.fingerprint, shown.language), check)

    def _build(self, current: str, language: str) -> Rendered:
        started = datetime.now(UTC)
        try:
            config = load_config(self.config_file)
        except NewsletterError as exc:
            return Rendered(current, self.issue, language, (), errors=(str(exc),))
        languages = self.languages(config.default_language)
        language = language if language in languages else config.default_language
        path = draft_path(config.issues_dir, self.issue, language, config.default_language)
        base = Rendered(current, self.issue, language, languages)
        try:
            composed = compose(config, path, None, now=started, write=False,
                               pull_missing=False)
        except DraftError as exc:
            return replace(base, errors=tuple(draft_error_lines(exc)))
        except NewsletterError as exc:  # a template, a snapshot or a sidecar that does not read
            return replace(base, errors=(str(exc),))
        except OSError as exc:
            return replace(base, errors=(f"{exc.filename or path}: {exc.strerror or exc}",))
        except Exception as exc:  # noqa: BLE001 - a bug met by some draft: a 500 page would
            # have no reload script, and the editor would lose the page's following of saves
            return replace(base, errors=(f"{path}: the preview failed on this draft: "
                                         f"{type(exc).__name__}: {exc}",))
        edition = composed.edition
        page, text = sample_parts(
            edition, unsubscribe_url_maker(config, secret_from_env()[0])(SAMPLE_EMAIL))
        return replace(base, subject=edition.subject, preheader=edition.preheader,
                       sender=str(config.sender), html=block_unreachable_images(
                           page, self.resolve), text=text,
                       has_snapshot=snapshot_path(composed.draft.path).exists(),
                       seconds=(datetime.now(UTC) - started).total_seconds())
