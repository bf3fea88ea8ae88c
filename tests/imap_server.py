"""A throwaway Dovecot for tests: its own config in a temp folder, 127.0.0.1 on free ports,
a passwd-file user, TLS with a trustme certificate, no system service touched."""

from __future__ import annotations

import contextlib
import ctypes
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

USER, PASSWORD = "bounces", "imap-test-password"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = newsletter-test-{imap_port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
# plain imap:// on 127.0.0.1 is what the client allows for tests and local relays
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = {uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies (killed by a timeout, Ctrl-C twice),
    so no Dovecot outlives its test run (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accounts() -> dict[str, str | int]:
    """Who Dovecot runs as. Dovecot refuses mail access as root (UID 0), so under root the
    mail is owned by the package's own `dovecot` user; otherwise everything is the caller."""
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return {"internal": me.pw_name, "internal_group": me.pw_name, "login": me.pw_name,
                "uid": me.pw_uid, "gid": me.pw_gid}
    mail = pwd.getpwnam("dovecot")
    login = "dovenull" if _has_user("dovenull") else "dovecot"
    return {"internal": "dovecot", "internal_group": "dovecot", "login": login,
            "uid": mail.pw_uid, "gid": mail.pw_gid}


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Dovecot:
    """dovecot -F -c CONF in a temp folder, a child of the test process."""

    def __init__(self, ca: trustme.CA, extra: str = "") -> None:
        # Not pytest's tmp_path: under root that is mode 0700, and the mail processes run
        # as the dovecot user, which must reach its mail folder.
        self.root = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
        self.root.chmod(0o711)
        self.imap_port, self.imaps_port = _free_port(), _free_port()
        self.conf = self.root / "dovecot.conf"
        accounts = _accounts()
        self.conf.write_text(_CONFIG.format(root=self.root, imap_port=self.imap_port,
                                            imaps_port=self.imaps_port, **accounts) + extra)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.root / "passwd").chmod(0o644)  # read by the auth worker (the dovecot user)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        for sub in ("mail", "home"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, int(accounts["uid"]), int(accounts["gid"]))

    def start(self) -> None:
        """dovecot -F: in the foreground, as this process's child, so the test owns it."""
        with (self.root / "stderr.log").open("wb") as err:
            self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                            stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=err,
                                            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.imaps_port), timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.terminate()  # the master stops its children on SIGTERM, as doveadm stop
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (
            self.root / "stderr.log", self.root / "dovecot.log") if p.exists())

    def url(self, mailbox: str = "INBOX", *, scheme: str = "imaps", user: str = USER) -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        return f"{scheme}://{user}@127.0.0.1:{port}/{mailbox}?timeout=5"

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in plain session over 127.0.0.1, for the test's own APPENDs and checks."""
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=5)
        imap.login(USER, PASSWORD)
        try:
            yield imap
        finally:
            imap.logout()

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        with self.client() as imap:
            for raw in messages:
                typ, data = imap.append(mailbox, None, None, raw)
                assert typ == "OK", data

    def create(self, mailbox: str) -> None:
        with self.client() as imap:
            typ, data = imap.create(mailbox)
            assert typ == "OK", data

    def flags(self, mailbox: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in the mailbox (read-only: EXAMINE), \\Recent aside."""
        with self.client() as imap:
            typ, data = imap.select(mailbox, readonly=True)
            assert typ == "OK", data
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            found = {}
            for line in data:
                if not line:
                    continue
                text = line.decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                flags = set(text.split("FLAGS (")[1].split(")")[0].split())
                found[uid] = flags - {"\\Recent"}  # per session (RFC 3501 2.3.2), not ours
            return found


def dovecot_or_skip() -> None:
    """Skip when Dovecot is not installed, except in CI, where a skip would hide a gap."""
    if shutil.which("dovecot") and shutil.which("doveadm"):
        return
    reason = "Dovecot is not installed (apt-get install dovecot-imapd)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the IMAP tests must run in CI")
    pytest.skip(reason)


@pytest.fixture
def imap_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def dovecot(imap_ca: trustme.CA) -> Iterator[Dovecot]:
    dovecot_or_skip()
    server = Dovecot(imap_ca)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def trusted(imap_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client trusts the test CA (and nothing else), as an operator's system CAs."""
    with imap_ca.cert_pem.tempfile() as bundle:
        monkeypatch.setenv("SSL_CERT_FILE", bundle)
        yield
