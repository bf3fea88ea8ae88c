"""The DKIM header hash input: relaxed canonicalisation as dkimpy does it, the fields chosen
bottom-up and over-signed, and the memos never carrying one message's fields into another."""

from __future__ import annotations

import pytest
from dkim.canonicalization import Relaxed

from newsletter.deliver import dkim_header
from newsletter.deliver.dkim_header import HeaderHasher, relaxed_field, split_fields

FIELDS = [
    b"From: IP for Business <newsletter@ipbusiness.example.org>",
    b"Subject: =?utf-8?q?Z=C3=B6e?=\r\n =?utf-8?q?_and_more?=",
    b"SUBJECT :\t spaced \t\t out  ",
    b"To: \"Reader  Number 1\" <r1@example.com>\r\n\t,  other@example.com",
    b"X-Empty:",
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
]


@pytest.mark.parametrize("raw", FIELDS)
def test_relaxed_field_is_what_dkimpy_computes(raw: bytes) -> None:
    name, _, value = raw.partition(b":")
    [(want_name, want_value)] = Relaxed.canonicalize_headers([(name, value)])
    assert relaxed_field(raw) + b"\r\n" == want_name + b":" + want_value


def test_split_fields_keeps_folds_with_their_field() -> None:
    head = b"".join(f + b"\r\n" for f in FIELDS)
    assert split_fields(head) == FIELDS
    unfolded = [FIELDS[0], FIELDS[4]]
    assert split_fields(b"".join(f + b"\r\n" for f in unfolded)) == unfolded


def hasher() -> HeaderHasher:
    return HeaderHasher([b"from", b"received", b"cc"], frozenset({b"from", b"cc"}))


def test_repeated_fields_are_signed_bottom_up_and_over_signed_names_once_more() -> None:
    head = b"Received: one\r\nFrom: a@example.org\r\nReceived:  two\r\n"
    plan, data = hasher().signed_data(head)
    assert data == b"from:a@example.org\r\nreceived:two\r\nreceived:one\r\n"
    assert plan.h_folded == b"h=from:from:received:received:cc"  # cc: absent, listed once
    assert plan.h_canonical == plan.h_folded


def test_a_long_h_list_is_folded_and_canonical_as_one_line() -> None:
    names = [b"list-unsubscribe-post"] * 6
    h = HeaderHasher(names, frozenset())
    plan, _ = h.signed_data(b"List-Unsubscribe-Post: x\r\n")
    assert b"\r\n\t " in plan.h_folded
    assert max(len(line) for line in plan.h_folded.split(b"\r\n")) <= 70
    assert plan.h_canonical == plan.h_folded.replace(b"\r\n\t ", b" ")


def test_the_memos_give_each_message_its_own_fields() -> None:
    h = hasher()
    first = h.signed_data(b"From: a@example.org\r\nReceived: r\r\n")
    second = h.signed_data(b"From: b@example.org\r\nReceived: r\r\n")
    third = h.signed_data(b"From: a@example.org\r\n")  # another sequence of names
    assert first[1] != second[1] and b"b@example.org" in second[1]
    assert third[1] == b"from:a@example.org\r\n"
    assert third[0].h_folded == b"h=from:from:cc"


def test_a_full_memo_is_emptied_and_still_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dkim_header, "_FIELDS_MAX", 3)
    h = hasher()
    for n in range(20):
        _, data = h.signed_data(f"From: reader{n}@example.org\r\n".encode())
        assert data == f"from:reader{n}@example.org\r\n".encode()
    assert len(h._fields) <= 4
