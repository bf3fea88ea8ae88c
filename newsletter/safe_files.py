"""Write project files without following symbolic links: a temp file, fsync, then a rename."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from newsletter.errors import InputError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(InputError):
    """A path to write, or a folder on the way to it inside the project, is a symbolic link."""


def write_text(path: Path, text: str, *, root: Path, mode: int = 0o644) -> None:
    """Write text (UTF-8) to path; see write_bytes."""
    write_bytes(path, text.encode("utf-8"), root=root, mode=mode)


def write_bytes(path: Path, data: bytes, *, root: Path, mode: int = 0o644) -> None:
    """Write data to path; see write_chunks."""
    write_chunks(path, (data,), root=root, mode=mode)


def write_chunks(path: Path, chunks: Iterable[bytes], *, root: Path, mode: int = 0o644) -> None:
    """Replace path with the chunks, atomically: a crash leaves the old file or the new.

    Refused (LinkRefused, naming the link) when path, or a folder between root and path, is
    a symbolic link: a link planted in issues/ or build/ must not make us write elsewhere.
    Folders inside root are created as needed; outside root (an --out the user chose) only
    the file itself is checked. mode is the new file's permissions, before the umask."""
    shown, path = path, Path(os.path.abspath(path))
    dir_fd = _open_parent(path, Path(os.path.abspath(root)), root)
    temp = f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        _refuse_link(path.name, dir_fd, shown)
        fd = os.open(temp, _TEMP_FLAGS, mode, dir_fd=dir_fd)
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)  # the rename itself survives a crash
    except BaseException:
        _unlink_quietly(temp, dir_fd)
        raise
    finally:
        os.close(dir_fd)


def _open_parent(path: Path, root: Path, shown_root: Path) -> int:
    """An fd of path's folder, reached from root one folder at a time with O_NOFOLLOW."""
    if not path.parent.is_relative_to(root):
        return os.open(path.parent, _DIR_FLAGS)
    fd = os.open(root, _DIR_FLAGS)
    here = shown_root
    try:
        for part in path.parent.relative_to(root).parts:
            here = here / part
            _refuse_link(part, fd, here)
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            child = _open_dir_nofollow(part, fd, here)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir_nofollow(name: str, dir_fd: int, shown: Path) -> int:
    try:
        return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link since we looked
            raise LinkRefused("is a symbolic link or not a folder; refusing to write through "
                              "it", where=str(shown)) from exc
        raise


def _refuse_link(name: str, dir_fd: int, shown: Path) -> None:
    try:
        info = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise LinkRefused("is a symbolic link; refusing to write through it", where=str(shown))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink_quietly(name: str, dir_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)
