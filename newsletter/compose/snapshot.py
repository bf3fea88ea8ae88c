"""The feed-item snapshot beside a draft (YYYY-MM.items.yaml): written by pull, read after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from newsletter import safe_files
from newsletter.compose.feeds import FeedItem, is_http_url, shorten_html
from newsletter.errors import InputError
from newsletter.sanitize import clean_line, sanitize_html

_HEADER = """\
# Feed items for issue {issue}, pulled by `newsletter pull` at {pulled}.
# Edit freely before sending: delete an item to drop it, reorder items, shorten a
# title or summary. Build and send use this file as it is; pull again to refresh it.
"""


@dataclass(frozen=True)
class Snapshot:
    issue: str
    pulled_at: datetime
    window_start: datetime
    window_end: datetime
    items: tuple[FeedItem, ...]


def snapshot_path(draft_path: Path) -> Path:
    return draft_path.with_name(draft_path.name.removesuffix(".md") + ".items.yaml")


def write_snapshot(path: Path, snap: Snapshot, *, root: Path | None = None) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a snapshot, and
    never through a symbolic link at or above it inside root (default: the folder that holds
    issues/, the project)."""
    data = {
        "issue": snap.issue,
        "pulled_at": _iso(snap.pulled_at),
        "window": {"start": _iso(snap.window_start), "end": _iso(snap.window_end)},
        "items": [
            {"id": i.id, "section": i.section, "kind": i.kind, "feed": i.feed,
             "title": i.title, "link": i.link,
             "published": _iso(i.published) if i.published else None, "summary": i.summary}
            for i in snap.items
        ],
    }
    text = _HEADER.format(issue=snap.issue, pulled=_iso(snap.pulled_at)) + yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, width=100)
    safe_files.write_text(path, text, root=path.parent.parent if root is None else root)


def read_snapshot(path: Path) -> Snapshot:
    """Read and re-validate a snapshot an editor may have changed by hand."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where) from exc
    if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
        raise InputError("must have 'issue', 'pulled_at', 'window' and an 'items' list",
                         where=str(path))
    problems, items = [], []
    for n, raw in enumerate(data.get("items") or [], 1):
        try:
            items.append(_item(raw))
        except ValueError as exc:
            problems.append(f"item {n}: {exc}")
    window = data.get("window") or {}
    try:
        pulled = _parse_time(data.get("pulled_at"))
        start, end = _parse_time(window.get("start")), _parse_time(window.get("end"))
    except (ValueError, AttributeError) as exc:
        problems.append(f"pulled_at/window: {exc}")
    if problems:
        raise InputError("; ".join(problems), where=str(path))
    return Snapshot(str(data.get("issue", "")), pulled, start, end, tuple(items))


def _item(raw: object) -> FeedItem:
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping of id, title, link, ...")
    for key in ("id", "title", "link", "section"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ValueError(f"'{key}' is missing")
    if not is_http_url(raw["link"]):
        raise ValueError(f"'link' must be an absolute http(s) URL, not {raw['link']!r}")
    kind = raw.get("kind", "news")
    if kind not in ("news", "events"):
        raise ValueError("'kind' must be news or events")
    published = raw.get("published")
    return FeedItem(
        id=clean_line(raw["id"]),
        title=clean_line(raw["title"]),
        link=raw["link"].strip(),
        summary=shorten_html(sanitize_html(str(raw.get("summary") or ""), absolute_only=True)),
        published=_parse_time(published) if published else None,
        feed=clean_line(str(raw.get("feed", ""))),
        section=clean_line(raw["section"]),
        kind=kind,
    )


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a date-time: {value!r}")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
