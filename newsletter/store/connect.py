"""Opening the store: `open_store(url_or_path)` picks the engine from the URL's scheme,
applies the connection settings and brings the schema up to date.

`sqlite:///relative/file.db`, `sqlite:////absolute/file.db` or a plain path open a SQLite
file. The URL comes from NEWSLETTER_DATABASE_URL, else `[store] url`, else `[store] path`
(database_url). Another engine is one more branch in open_store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.config import Config
from newsletter.store.db import Db, StoreError
from newsletter.store.schema import migrate
from newsletter.store.sqlite_db import open_sqlite

URL_ENV = "NEWSLETTER_DATABASE_URL"
SQLITE = "sqlite:///"


def database_url(config: Config, environ: Mapping[str, str] = os.environ) -> str:
    """Which store the project uses: the environment's URL, then `[store] url`, then the
    `[store] path` file. A relative SQLite file is the project's (under its root)."""
    url = environ.get(URL_ENV, "").strip() or config.store_url
    if not url:
        return str(config.store_path)
    if url.startswith(SQLITE):
        return SQLITE + str(config.root / _sqlite_path(url))
    return url


def url_scheme(target: str | Path) -> str:
    """A store URL's scheme ("sqlite", "postgresql", ...); "" for a plain file path."""
    text = str(target)
    return urlsplit(text).scheme if "://" in text else ""


def is_server_url(target: str | Path) -> bool:
    """A database server (shared by hosts), not a local file."""
    return url_scheme(target) in ("postgresql", "postgres")


def open_store(target: str | Path) -> Db:
    """Open (creating or migrating) the store a URL or a file path names."""
    text, scheme = str(target), url_scheme(target)
    if scheme == "sqlite":
        return connect_sqlite(Path(_sqlite_path(text)))
    if is_server_url(text):
        from newsletter.store.postgres_db import connect_postgres  # psycopg only when used

        return connect_postgres(text)
    if scheme:
        # Only the scheme is named: the rest of a URL may hold a password.
        raise StoreError(f"unknown URL scheme {scheme!r}: this program opens sqlite:///FILE, "
                         "postgresql://USER@HOST:PORT/DB or a file path")
    return connect_sqlite(Path(text))


def store_exists(target: str | Path) -> bool:
    """Whether the store a URL or path names is there, creating nothing: a SQLite file that
    exists, or any server URL (a server's database is made by its operator, never by us)."""
    text, scheme = str(target), url_scheme(target)
    if scheme == "sqlite":
        return Path(_sqlite_path(text)).exists()
    return bool(scheme) or Path(text).exists()


def _sqlite_path(url: str) -> str:
    """sqlite:///a.db -> a.db; sqlite:////srv/a.db -> /srv/a.db (SQLAlchemy's spelling)."""
    path = unquote(url[len(SQLITE):]) if url.startswith(SQLITE) else ""
    if not path:
        raise StoreError("a sqlite URL names a file: sqlite:///FILE")
    return path


def connect_sqlite(path: Path) -> Db:
    """Open (creating or migrating) the file; WAL so readers never block the sender."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_owner_only(path)
        db = open_sqlite(str(path))
    except StoreError as exc:
        raise StoreError(exc.detail, where=str(path)) from exc
    try:
        db.enter_wal()
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db, str(path))
    except BaseException as exc:
        db.close()  # a half-opened handle would hold the file's locks until collected
        if isinstance(exc, StoreError):
            raise StoreError(exc.detail, where=str(path)) from exc
        raise
    return db


def _create_owner_only(path: Path) -> None:
    """Create a new database file 0600: it holds personal data. SQLite gives the -wal and
    -shm files it makes beside it the database's own permissions (os_unix.c,
    findCreateFileMode), so they are owner-only too. An existing file keeps its mode.

    Only a new file is opened here: closing any descriptor of a database file drops every
    POSIX lock this process holds on it (fcntl semantics), including the locks of the
    other threads' SQLite connections, which then fail with "disk I/O error"."""
    if path.exists():
        return
    with contextlib.suppress(FileExistsError):  # another process or thread made it just now
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
