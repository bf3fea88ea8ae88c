"""SQL of reach: the counted links of each frozen edition and their click totals, and the
figures `newsletter report` reads from the ledger and the return path.

A link row names an issue, a language and a URL, never a reader; a click adds 1 to a total.
No address, token or IP address is written here (the scanner filter keeps client addresses in
memory for a few seconds only: newsletter.reach).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newsletter.store.db import Db

CANARY = "canary"


@dataclass(frozen=True)
class Link:
    id: str
    issue: str
    language: str
    url: str
    kind: str  # "link" or "canary"


@dataclass(frozen=True)
class LinkCount:
    language: str
    url: str
    clicks: int  # counted clicks
    filtered: int  # hits not counted: from a client that fetched the canary around them


def _new_id() -> str:
    # 72 random bits, URL-safe: guessing a live id takes ~2^60 requests per id in use.
    return secrets.token_urlsafe(9)


def link_ids(conn: Db, issue: str, language: str,
             urls: Iterable[str]) -> dict[str, str]:
    """url -> id for an edition's links, and CANARY -> the edition's canary id. Created on
    first use, the same ever after: two hosts freezing at once get the same ids, and a
    re-frozen edition keeps the ids already in readers' mail."""
    wanted = [("canary", "")] + [("link", u) for u in dict.fromkeys(urls)]
    with conn.transaction():
        # After the links already there: a variant's own links follow the edition's.
        start = conn.execute("SELECT count(*) FROM reach_links WHERE issue = ? AND "
                             "language = ?", (issue, language)).fetchone()[0]
        conn.executemany(
            "INSERT INTO reach_links (id, issue, language, url, kind, position) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(_new_id(), issue, language, url, kind, start + n)
             for n, (kind, url) in enumerate(wanted)])
        rows = conn.execute("SELECT id, url, kind FROM reach_links WHERE issue = ? AND "
                            "language = ?", (issue, language)).fetchall()
    found = {(r["kind"], r["url"]): r["id"] for r in rows}
    ids = {url: found[("link", url)] for kind, url in wanted if kind == "link"}
    ids[CANARY] = found[("canary", "")]
    return ids


def find_link(conn: Db, link_id: str) -> Link | None:
    row = conn.execute("SELECT id, issue, language, url, kind FROM reach_links WHERE id = ?",
                       (link_id,)).fetchone()
    return Link(row["id"], row["issue"], row["language"], row["url"], row["kind"]) \
        if row else None


def add_hits(conn: Db, clicks: Mapping[str, int],
             filtered: Mapping[str, int]) -> None:
    """Add totals per link id in one transaction (the filter commits in batches)."""
    with conn.transaction():
        conn.executemany("UPDATE reach_links SET clicks = clicks + ? WHERE id = ?",
                         [(n, i) for i, n in clicks.items() if n])
        conn.executemany("UPDATE reach_links SET filtered = filtered + ? WHERE id = ?",
                         [(n, i) for i, n in filtered.items() if n])


def link_counts(conn: Db, issue: str) -> list[LinkCount]:
    """Every counted link of an issue, in edition order; the canary's row counts scanners."""
    return [LinkCount(r["language"], r["url"] if r["kind"] == "link" else CANARY, r["clicks"],
                      r["filtered"]) for r in conn.execute(
        "SELECT language, url, kind, clicks, filtered FROM reach_links WHERE issue = ? "
        "ORDER BY language, position", (issue,))]


# --- the ledger and the return path, per edition ------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def first_frozen(conn: Db, issue: str) -> datetime | None:
    row = conn.execute("SELECT min(frozen_at) FROM editions WHERE issue = ?",
                       (issue,)).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None


def next_frozen(conn: Db, issue: str) -> datetime | None:
    row = conn.execute("SELECT min(frozen_at) FROM editions WHERE issue > ?",
                       (issue,)).fetchone()
    return datetime.fromisoformat(row[0]) if row and row[0] else None


def delivery_states(conn: Db, issue: str) -> dict[str, dict[str, int]]:
    """language -> state -> rows, the issue's own rows and its late editions' (ISSUE+LANG),
    with the rows of forgotten readers, which the ledger keeps as counts (as status does)."""
    out: dict[str, dict[str, int]] = {}
    for table, count in (("deliveries", "count(*)"), ("forgotten_deliveries", "sum(count)")):
        for lang, state, n in conn.execute(
                f"SELECT language, state, {count} FROM {table} WHERE issue = ? OR issue LIKE ? "
                "GROUP BY language, state", (issue, issue + "+%")):
            out.setdefault(lang, {})[state] = out.get(lang, {}).get(state, 0) + n
    return out


def return_path_events(conn: Db, issue: str, start: datetime,
                       end: datetime) -> dict[str, dict[str, int]]:
    """language -> kind -> readers: bounce_events (hard, soft, ours, complaint, unsubscribe
    by mail) of addresses this issue was sent to, recorded in [start, end). One reader counts
    once per kind; 'delayed' warnings are not bounces."""
    out: dict[str, dict[str, int]] = {}
    for lang, kind, n in conn.execute(
            "SELECT d.language, b.kind, count(DISTINCT b.email) FROM bounce_events b "
            "JOIN subscribers s ON s.email = b.email JOIN deliveries d ON d.subscriber_id = s.id "
            "WHERE (d.issue = ? OR d.issue LIKE ?) AND d.state = 'sent' AND b.at >= ? "
            "AND b.at < ? AND NOT (b.kind = 'soft' AND b.reason = 'delayed') "
            "GROUP BY d.language, b.kind", (issue, issue + "+%", _iso(start), _iso(end))):
        out.setdefault(lang, {})[kind] = n
    return out


def unsubscribed_after(conn: Db, issue: str, start: datetime,
                       days: int = 31) -> dict[str, int]:
    """language -> readers sent this issue who unsubscribed within `days` after start: by
    the consent history's 'unsubscribed' event (link, mail, webhook or operator), or, for an
    address with no such event (unsubscribed before the history was kept), by the time of
    its last change while its status is unsubscribed."""
    end = start + timedelta(days=days)
    window = (_iso(start), _iso(end))
    return {r[0]: r[1] for r in conn.execute(
        "SELECT d.language, count(DISTINCT s.id) FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE (d.issue = ? OR d.issue LIKE ?) AND d.state = 'sent' "
        "AND (EXISTS (SELECT 1 FROM consent_events c WHERE c.email = s.email AND c.action = "
        "'unsubscribed' AND c.at >= ? AND c.at < ?) OR (s.status = 'unsubscribed' AND "
        "s.updated_at >= ? AND s.updated_at < ? AND NOT EXISTS (SELECT 1 FROM consent_events c "
        "WHERE c.email = s.email AND c.action = 'unsubscribed'))) GROUP BY d.language",
        (issue, issue + "+%", *window, *window))}
