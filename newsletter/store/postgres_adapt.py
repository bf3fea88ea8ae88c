"""How the store's portable SQL and SQLite-shaped rows meet psycopg: placeholders, rows
by name and position, and the few types SQLite answers differently (no decimals, no
booleans)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import adapt

# SQL text outside literals: a quoted string or identifier, a comment, or one character.
# `::` (a PostgreSQL cast) is kept whole so that `x::text` is not read as a `:text` name.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|::|:[A-Za-z_]\w*|.",
                    re.DOTALL)


@lru_cache(maxsize=512)
def to_psycopg(sql: str) -> str:
    """The store's `?` (and `:name`) placeholders as psycopg's `%s` (and `%(name)s`).

    psycopg reads `%` everywhere in the text, literals included, so every `%` is doubled;
    a `?` or `:name` inside a quoted literal, identifier or comment stays as it is."""
    out = []
    for token in _TOKEN.findall(sql):
        if token == "?":
            out.append("%s")
        elif token.startswith(":") and len(token) > 1 and token != "::":
            out.append(f"%({token[1:]})s")
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


class _RowBase(tuple):  # type: ignore[type-arg]
    """A result row: by position, by (case-insensitive) name, keys(), unpacking."""

    _index: dict[str, int] = {}
    _names: list[str] = []

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                key = self._index[key.lower()]
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[_RowBase]:
    index = {n.lower(): i for i, n in reversed(list(enumerate(names)))}  # first one wins
    return type("Row", (_RowBase,), {"_index": index, "_names": list(names)})


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], _RowBase]:
    names = tuple(col.name for col in cursor.description or ())
    cls = _row_class(names)
    return lambda values: cls(values)


class _NumericLoader(adapt.Loader):
    """sum() and avg() answer `numeric`: an int when whole, else a float, as SQLite does
    (it has no decimals; no store code expects a Decimal)."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class _BoolDumper(adapt.Dumper):
    """True/False go in as 1/0: the schema has no boolean columns (SQLite has none)."""

    oid = psycopg.adapters.types["int4"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def configure(raw: psycopg.Connection[Any]) -> None:
    raw.adapters.register_loader("numeric", _NumericLoader)
    raw.adapters.register_dumper(bool, _BoolDumper)
    raw.row_factory = _row_factory
