"""A message's bytes that remember how they were assembled, so later stages reuse per-edition
work: the bytes are the message as before; the parts say which runs of lines every reader of
the edition shares (the same Shared object in each message) and which are the reader's own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Shared(bytes):
    """Whole lines (ending with CRLF) that the messages of one prepared edition share: every
    reader's, or (a line whose only slot is the edition note) every reader's with that note.

    What a later stage derives from them (SMTP dot-stuffing, the DKIM canonical form) is
    kept on the object: worked out for the first reader, looked up for the rest. The memo
    lives as long as the prepared edition does."""

    def derived(self, make: Callable[[bytes], T]) -> T:
        """make(self), computed once per object; two threads may both compute it the first
        time, which costs a little and changes nothing (make is a pure function)."""
        # Keyed by the function: no name clashes. No typing.cast: it is a call, and this runs
        # for every shared part of every message, twice with DKIM.
        memo: dict[Any, Any] = self.__dict__  # type: ignore[assignment]
        try:
            return memo[make]  # type: ignore[no-any-return]
        except KeyError:
            value = memo[make] = make(self)
            return value


class Wire(bytes):
    """A whole message. self[body_start:] == b"".join(parts); every part ends with CRLF, so
    each starts a line; a part that is a Shared is the same object for every reader."""

    body_start: int
    parts: tuple[bytes, ...]


def wire(head: bytes, parts: Sequence[bytes]) -> Wire:
    """head: the header fields and the blank line after them (ends with CRLF CRLF)."""
    message = Wire(b"".join([head, *parts]))
    message.body_start, message.parts = len(head), tuple(parts)
    return message


def prepended(message: Wire, fields: bytes) -> Wire:
    """The same message with header fields put on top (a DKIM-Signature); fields end with
    CRLF."""
    longer = Wire(fields + message)
    longer.body_start, longer.parts = message.body_start + len(fields), message.parts
    return longer
