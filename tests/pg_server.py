"""A throwaway PostgreSQL cluster without pytest (the tests' fixture, tests/pg_cluster.py, and
`make bench` both start one): initdb into a temporary folder, listening on 127.0.0.1 at a free
port, stopped and deleted at the end.

initdb refuses to run as root, so under uid 0 the cluster belongs to the `postgres` system
user (Debian's package creates it) and every server command runs as that user. Local
connections are trusted (the cluster is a throwaway and listens on 127.0.0.1 only), except
the role `secret_user`, which must give its scram password. The tests' cluster runs without
fsync (nothing in it must survive a power cut); the bench's is `durable`: fsync and
synchronous_commit as Debian ships them (on), so a commit costs what it costs in production.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "newsletter_test"
SECRET_USER = "secret_user"


class PgUnavailable(Exception):
    """No cluster can be started here (the reason is the message)."""


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """A running cluster: `url(db)` names a database on it; `new_database()` makes one."""

    bin: Path
    data: Path
    port: int
    owner: str | None  # the system user the server runs as (None: this process's user)
    secret_password: str

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A server command (initdb, pg_ctl) as the cluster's owner."""
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.owner:
            cmd = ["runuser", "-u", self.owner, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement)

    def new_database(self, owner: str = SUPERUSER) -> str:
        """A fresh, empty database (its name); each test that writes gets its own."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.sql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return name

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def start(self) -> None:
        log = self.data / "server.log"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start")


def _owner_for_root() -> str | None:
    if os.getuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PgUnavailable("running as root and there is no `postgres` user to run initdb "
                            "as") from None
    return "postgres"


def _init(cluster: PgCluster, durable: bool) -> None:
    cluster.run("initdb", "-D", str(cluster.data), "-U", SUPERUSER, "--encoding=UTF8",
                "--locale=C", "--auth-local=trust", "--auth-host=trust")
    with (cluster.data / "pg_hba.conf").open("w") as hba:
        hba.write(f"host all {SECRET_USER} 127.0.0.1/32 scram-sha-256\n"
                  "host all all 127.0.0.1/32 trust\n")
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {cluster.port}\n"
                   f"unix_socket_directories = '{cluster.data}'\nmax_connections = 200\n")
        if not durable:
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")


@contextlib.contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[PgCluster]:
    """A running cluster for the block; PgUnavailable when PostgreSQL is not installed."""
    binaries = server_binaries()
    if binaries is None:
        raise PgUnavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in "
                            "/usr/lib/postgresql/*/bin): apt-get install postgresql")
    owner = _owner_for_root()
    root = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
    try:
        if owner:
            os.chmod(root, 0o755)
            shutil.chown(root, owner)
        cluster = PgCluster(binaries, root / "data", _free_port(), owner, uuid.uuid4().hex)
        _init(cluster, durable)
        cluster.start()
        try:
            cluster.sql(f"CREATE ROLE {SECRET_USER} LOGIN PASSWORD '{cluster.secret_password}'")
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
