"""The embedded transport: each message a file in the outbox Maildir (moved here from
transport.py, which re-exports it)."""

from __future__ import annotations

import mailbox
from pathlib import Path

from newsletter.deliver.smtp_pipeline import Outcome
from newsletter.errors import DeliveryError


class MaildirTransport:
    """The embedded default: each message is a file in outbox/new, as mail clients read it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.box: mailbox.Maildir | None = None

    @property
    def description(self) -> str:
        return f"Maildir {self.path}"

    def open(self) -> None:
        # The send's threads open at once; Maildir(create=True) checks, then mkdirs: a race.
        try:
            for folder in (self.path, self.path / "tmp", self.path / "new", self.path / "cur"):
                folder.mkdir(mode=0o700, exist_ok=True)
            self.box = mailbox.Maildir(self.path, create=False)
        except OSError as exc:
            raise DeliveryError(f"cannot create the Maildir: {exc}", where=str(self.path)) from exc

    def close(self) -> None:
        self.box = None

    def send(self, sender: str, recipient: str, data: bytes) -> Outcome:
        if self.box is None:
            self.open()
        assert self.box is not None
        try:
            # A Maildir holds local line ends (LF): mutt and others show CRLF files with "^M".
            # Written to tmp/, then renamed into new/: atomic.
            key = self.box.add(data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryError(f"cannot write a message: {exc}", where=str(self.path)) from exc
        return Outcome("sent", 250, f"250 saved as {key}")
