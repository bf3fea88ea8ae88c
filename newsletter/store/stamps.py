"""Timestamps as the store writes them: ISO 8601 in UTC with microseconds, so that text
order is time order in every table and on every engine."""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return stamp(datetime.now(UTC))
