"""The problem list every section parser writes to, and the typed readers that feed it."""

from __future__ import annotations

from typing import Any


class Problems:
    """Collects every problem so the editor fixes the file in one pass."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"'{key}' {message}")

    def text(self, table: dict, key: str, where: str, *, required: bool = True,
             default: str = "") -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.add(f"{where}.{key}", "is missing")
            return default
        if not isinstance(value, str) or (required and not value.strip()):
            self.add(f"{where}.{key}", "must be a non-empty string")
            return default
        if key != "postal_address" and ("\r" in value or "\n" in value):
            self.add(f"{where}.{key}", "must be on one line")
            return default
        return value.strip()

    def number(self, table: dict, key: str, where: str, default: float, *,
               minimum: float, integer: bool = False) -> Any:
        value = table.get(key, default)
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or value < minimum:
            kind = "a whole number" if integer else "a number"
            self.add(f"{where}.{key}", f"must be {kind} of at least {minimum:g}")
            return default
        return value

    def flag(self, table: dict, key: str, where: str) -> bool:
        """A true/false key that is false when absent."""
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.add(f"{where}.{key}", "must be true or false")
            return False
        return value

    def strings(self, table: dict, key: str, where: str, message: str) -> list[str] | None:
        """A list of strings ([] when absent); None, with the message added, when it is not."""
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.add(f"{where}.{key}", message)
            return None
        return value
