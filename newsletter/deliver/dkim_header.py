"""The DKIM header hash input (RFC 6376 3.4.2 relaxed, 5.4.2 choice of fields, 8.15
over-signing), with what repeats from message to message of a send worked out once: the
canonical form of each field seen before (From, Subject, Content-Type, ...: every message of an
edition carries the same ones) and, per sequence of field names, the h= list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
_WSP_RE = re.compile(rb"[ \t]+")
# Bounds on the memos: a send meets a few dozen distinct fixed fields and a handful of field
# orders; the per-reader fields (To, Date, Message-ID, List-Unsubscribe) fill the field memo,
# which is emptied when full, so it stays small and the fixed fields are worked out again
# once every few hundred messages.
_FIELDS_MAX, _PLANS_MAX = 2048, 64


def relaxed_field(field_: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded, runs of WSP to one SP, no WSP at the ends
    (field_ is one whole field with its folds, without its final CRLF)."""
    if not field_:
        return b""
    name, _, value = field_.partition(b":")
    value = value.replace(CRLF, b"")
    if b"\t" in value or b"  " in value:  # else the regex would change nothing: skip it
        value = _WSP_RE.sub(b" ", value)
    return name.strip().lower() + b":" + value.strip(b" ")


def split_fields(head: bytes) -> list[bytes]:
    """The header's fields, each with its folds and without its final CRLF; head is the
    header up to and including the last field's CRLF. A line that starts with WSP continues
    the field before it (RFC 5322 2.2.3)."""
    lines = head.split(CRLF)
    if b"\n " not in head and b"\n\t" not in head:  # nothing folded: one line a field
        return [line for line in lines if line]
    fields: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += CRLF + line
        elif line:
            fields.append(line)
    return fields


@dataclass(frozen=True)
class Plan:
    """For one sequence of field names: which fields the signature covers, in h= order."""

    order: tuple[int, ...]  # indexes of the covered fields (null entries cover none)
    h_folded: bytes  # the h= tag as written, folded before a colon
    h_canonical: bytes  # the same tag as relaxed canonicalisation sees it (folds to one SP)


class HeaderHasher:
    """The signed part of a header for a fixed list of names to sign and over-sign."""

    def __init__(self, names: Sequence[bytes], oversigned: frozenset[bytes]) -> None:
        self.names, self.oversigned = tuple(names), oversigned
        self._fields: dict[bytes, tuple[bytes, bytes]] = {}  # raw -> (name, canonical CRLF)
        self._plans: dict[tuple[bytes, ...], Plan] = {}

    def signed_data(self, head: bytes) -> tuple[Plan, bytes]:
        """(the plan, the canonical covered fields each with its CRLF, in h= order)."""
        memo = self._fields
        if len(memo) > _FIELDS_MAX:
            memo.clear()
        fields = []
        for raw in split_fields(head):
            known = memo.get(raw)
            if known is None:
                canonical = relaxed_field(raw)
                known = memo[raw] = (canonical.partition(b":")[0], canonical + CRLF)
            fields.append(known)
        names = tuple(name for name, _ in fields)
        plan = self._plans.get(names)
        if plan is None:
            if len(self._plans) > _PLANS_MAX:
                self._plans.clear()
            plan = self._plans[names] = self._plan(names)
        return plan, b"".join([fields[i][1] for i in plan.order])

    def _plan(self, names: tuple[bytes, ...]) -> Plan:
        """RFC 6376 5.4.2: each name takes that field's instances from the bottom up, then,
        when over-signed, one more entry that matches nothing and signs as a null string
        (8.15)."""
        order, listed = [], []
        for name in self.names:
            found = [i for i in reversed(range(len(names))) if names[i] == name]
            order += found
            listed += [name] * (len(found) + (name in self.oversigned))
        folded = folded_list(b"h=", listed)
        return Plan(tuple(order), folded, relaxed_field(b"h:" + folded)[2:])


def folded_list(tag: bytes, names: list[bytes], width: int = 70) -> bytes:
    """A colon-separated tag value folded before a colon, so no line passes `width`."""
    lines, line = [], tag
    for i, name in enumerate(names):
        piece = (b":" if i else b"") + name
        if len(line) + len(piece) > width and i:
            lines.append(line)
            line = b" " + piece
        else:
            line += piece
    return b"\r\n\t".join([*lines, line])
