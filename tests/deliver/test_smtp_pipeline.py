"""The session's own SMTP writing and reply reading, against hostile input: an address that
would end a command early, and a relay's reply without end (over a real socket pair)."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator

import pytest

from newsletter.deliver.smtp_pipeline import Session, envelope
from newsletter.errors import InputError


@pytest.mark.parametrize("recipient", [
    "a@example.org>\r\nRCPT TO:<victim@example.net", "a@example.org\nDATA", "a\0@example.org",
    "a@example.org>"])
def test_an_address_that_would_end_the_command_is_refused_before_any_write(
        recipient: str) -> None:
    with pytest.raises(InputError, match="line break or '>'"):
        envelope("bounces@example.org", recipient)
    with pytest.raises(InputError):
        envelope(recipient, "reader@example.org")


def test_a_plain_envelope_is_three_commands() -> None:
    assert envelope("b@example.org", "r@example.org") == (
        b"MAIL FROM:<b@example.org>\r\nRCPT TO:<r@example.org>\r\nDATA\r\n")


@pytest.fixture
def relay() -> Iterator[tuple[Session, socket.socket]]:
    """A Session on one end of a socket pair; the test writes the relay's replies on the other."""
    ours, theirs = socket.socketpair()
    smtp = smtplib.SMTP()
    smtp.sock = ours
    smtp.ehlo_resp, smtp.esmtp_features = b"", {"pipelining": ""}
    yield Session(smtp), theirs
    ours.close()
    theirs.close()


def test_a_multi_line_reply_is_read_whole(relay: tuple[Session, socket.socket]) -> None:
    session, theirs = relay
    theirs.sendall(b"550-5.7.1 one\r\n550-two\r\n550 5.7.1 three\r\n250 ok\r\n")
    assert session.reply() == (550, b"5.7.1 one\ntwo\n5.7.1 three")
    assert session.reply() == (250, b"ok")


def test_a_reply_line_longer_than_smtp_allows_drops_the_session(
        relay: tuple[Session, socket.socket]) -> None:
    session, theirs = relay
    theirs.sendall(b"250 " + b"x" * 9000 + b"\r\n")
    with pytest.raises(ConnectionError, match="longer than 8192"):
        session.reply()


def test_a_reply_that_never_ends_drops_the_session(relay: tuple[Session, socket.socket]) -> None:
    session, theirs = relay
    theirs.sendall(b"250-more\r\n" * 150 + b"250 end\r\n")
    with pytest.raises(ConnectionError, match="more than 100 lines"):
        session.reply()
