"""Where the return path is read from: a Maildir, an mbox file, a folder of .eml files or IMAP."""

from __future__ import annotations

import mailbox
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol

from newsletter.errors import InputError

# A report is a few KB; a message far larger is no report, and must not fill the memory.
# Only its beginning is read (headers and the first parts are all a classifier looks at).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class Source(Protocol):
    """Messages to process, and a way to mark one done once its outcome is committed."""

    def __enter__(self) -> Source: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(label, raw bytes) of each message not yet marked done."""
        ...

    def mark_done(self, label: str) -> None:
        """Record that the message is processed (IMAP: flag or move it); files: nothing."""
        ...


def open_source(spec: str, *, move_to: str = "", read_only: bool = False,
                environ: dict[str, str] | None = None) -> Source:
    """The source named by PATH or URL; InputError at once if it is none of the four kinds.

    move_to and read_only apply to IMAP only: move processed messages into that mailbox, or
    (a dry run) open the mailbox read-only and never flag anything.
    """
    if spec.split("://", 1)[0].lower() in ("imap", "imaps") and "://" in spec:
        from newsletter.audience.imap_mailbox import ImapSource

        env = os.environ if environ is None else environ
        return ImapSource.from_url(spec, env.get("NEWSLETTER_IMAP_PASSWORD", ""),
                                   move_to=move_to, read_only=read_only)
    return FileSource(Path(spec), _file_kind(Path(spec)))


def _file_kind(path: Path) -> str:
    if path.is_dir() and all((path / d).is_dir() for d in ("cur", "new", "tmp")):
        return "maildir"
    if path.is_dir():
        if any(_eml_files(path)):
            return "eml"
        raise InputError("not a Maildir (a folder with cur/, new/, tmp/), an mbox file or a "
                         "folder of .eml files (this folder has no .eml file)", where=str(path))
    try:
        with path.open("rb") as f:
            is_mbox = f.read(5) in (b"", b"From ")  # mbox: empty, or a "From " line first
    except FileNotFoundError:
        is_mbox = False
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    if not is_mbox:
        raise InputError("not a Maildir (a folder with cur/, new/, tmp/), an mbox file (one "
                         "that starts with a 'From ' line) or a folder of .eml files",
                         where=str(path))
    return "mbox"


def _eml_files(folder: Path) -> Iterator[Path]:
    """Regular files named *.eml, by name; links are not followed (a drop folder is written
    by others, and a link could point the run at any file on the machine)."""
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if (entry.name.lower().endswith(".eml") and not entry.name.startswith(".")
                and entry.is_file(follow_symlinks=False)):
            yield Path(entry.path)


class FileSource:
    """A Maildir, an mbox file or a folder of .eml files. Marking done does nothing: a rerun
    reads every message again and the ledger of processed reports skips the known ones."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        if self.kind == "eml":
            return self._eml()
        if self.kind == "maildir":
            box: mailbox.Mailbox = mailbox.Maildir(self.path, factory=None, create=False)
            # Maildir names start with the delivery time: sorted is the order they came in.
            return _from_box(box, sorted(box.keys()), lambda key: key)
        box = mailbox.mbox(self.path, factory=None, create=False)
        return _from_box(box, box.keys(), lambda key: f"{self.path}:{key}")

    def mark_done(self, label: str) -> None:
        return None

    def _eml(self) -> Iterator[tuple[str, bytes]]:
        for path in _eml_files(self.path):
            raw = _read_regular(path)
            if raw is not None:
                yield path.name, raw


def _read_regular(path: Path) -> bytes | None:
    """At most MAX_MESSAGE_BYTES of a regular file; None if it went away or was swapped for
    something else (a link, a FIFO that would block the run) since the listing."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(MAX_MESSAGE_BYTES)


def _from_box(box: mailbox.Mailbox, keys: list, label) -> Iterator[tuple[str, bytes]]:  # noqa: ANN001
    try:
        for key in keys:
            try:
                raw = box.get_bytes(key)
            except (KeyError, OSError):
                continue  # a mail client moved it since the listing; the next run sees it
            yield label(key), raw[:MAX_MESSAGE_BYTES]
    finally:
        box.close()


def read_mailbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of each message of a Maildir, mbox or .eml folder; InputError at
    once if PATH is none of them."""
    return FileSource(path, _file_kind(path)).messages()
