"""A private Postfix for the delivery tests: the real relay the project sends through, started
per test in its own folder and stopped and deleted after it, so a test sees the replies a real
Postfix gives (rate limits, size limits, unknown users, TLS), not a script's idea of them.

The instance has its own config_directory, queue_directory and data_directory under a
temporary folder, listens on 127.0.0.1 at a free port only (inet_interfaces, master.cf), and
nothing leaves the machine: mail for example.com goes to a Maildir under the folder (the
virtual delivery agent; its Delivered-To field counts the copies per address), everything
else is discarded. master(8) runs as the fixture's child, SIGTERM stops it.
An address left out of `mailboxes` is unknown to it ("550 5.1.1 ... User unknown in virtual
mailbox table", reject_unlisted_recipient); `refuse` gives chosen addresses an access(5)
action such as "450 4.2.1 ...". Postfix's daemons run as the `postfix` user, so the folder
is made outside pytest's tmp_path (whose parent only root may enter) and needs root to start:
without the package or root the fixture skips with the reason.

Installed by `apt-get install postfix` (debconf main_mailer_type "No configuration"): the
system instance is not used and need not run.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MASTER = "/usr/lib/postfix/sbin/master"  # Debian's daemon_directory
DOMAIN = "example.com"  # the readers' domain in conftest_delivery.make_delivery_project
_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
_OWN_QUEUES = ("incoming", "active", "deferred", "defer", "bounce", "flush", "trace", "hold",
               "corrupt", "saved", "private")

# Every service a relay that takes mail by SMTP and delivers it locally needs; no chroot
# (the instance's folder is not laid out for one), no pickup (nothing is submitted locally).
MASTER_CF = """\
{listen} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def unavailable() -> str:
    """Why no private Postfix can run here ("" when one can)."""
    if not Path(POSTFIX).exists() or not Path(MASTER).exists():
        return "postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance must be started as root (its daemons drop to postfix)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no `postfix` system user (the postfix package creates it)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    """The master has bound its SMTP socket, read from /proc: a test connection would count
    toward anvil's connection rate, which some tests measure."""
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # TCP_LISTEN
                return True
    return False


@dataclass
class PostfixRelay:
    """One instance; start() it, send to url(), count delivered(), stop() it."""

    root: Path
    port: int = field(default_factory=_free_port)
    settings: dict[str, str] = field(default_factory=dict)  # main.cf lines over the base
    mailboxes: frozenset[str] | None = None  # None: every address at DOMAIN exists
    refuse: dict[str, str] = field(default_factory=dict)  # address -> access(5) action
    files: dict[str, bytes] = field(default_factory=dict)  # into etc/ ("{etc}" in settings)
    logins: dict[str, str] = field(default_factory=dict)  # SMTP AUTH users (Cyrus sasldb)
    master: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    def url(self, scheme: str = "smtp") -> str:
        return f"{scheme}://127.0.0.1:{self.port}?timeout=5"

    def main_cf(self) -> str:
        base = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "relay.test",
            "mydomain": "relay.test",
            "myorigin": "relay.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtpd_banner": "$myhostname ESMTP",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions": f"check_recipient_access regexp:{self.etc / 'refuse'}"
                                            ", reject_unlisted_recipient, permit_mynetworks",
            # 127.0.0.1 is in mynetworks, which anvil's limits exempt by default
            "smtpd_client_event_limit_exceptions": "",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.root / "mail"),
            "virtual_mailbox_maps": f"regexp:{self.etc / 'mailboxes'}",
            "virtual_uid_maps": f"static:{pwd.getpwnam('postfix').pw_uid}",
            "virtual_gid_maps": f"static:{pwd.getpwnam('postfix').pw_gid}",
            "virtual_minimum_uid": "1",
            "default_transport": "discard",  # nothing leaves the machine, bounces included
            "relay_transport": "discard",
            "maillog_file": str(self.root / "maillog"),
            "maillog_file_prefixes": str(self.root),
            "smtpd_tls_loglevel": "1",
            # as strict as a current Postfix can be about what a client sends: commands only
            # where PIPELINING allows them, no bare LF (SMTP smuggling), 7-bit where undeclared
            "smtpd_forbid_unauth_pipelining": "yes",
            "smtpd_data_restrictions": "reject_unauth_pipelining",
            "smtpd_forbid_bare_newline": "reject",
            "smtpd_forbid_bare_newline_exclusions": "",  # (default: $mynetworks, us)
            "strict_8bitmime": "yes",
        }
        if self.logins:  # Cyrus SASL with its own sasldb: no saslauthd, no Dovecot
            base.update({
                "smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "cyrus",
                "smtpd_sasl_path": "smtpd", "cyrus_sasl_config_path": str(self.etc / "sasl"),
                "smtpd_sasl_local_domain": "relay.test",
                "smtpd_sasl_security_options": "noanonymous"})
        settings = {k: v.replace("{etc}", str(self.etc)) for k, v in self.settings.items()}
        return "".join(f"{k} = {v}\n" for k, v in {**base, **settings}.items())

    def write_config(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "main.cf").write_text(self.main_cf())
        (self.etc / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        # One Maildir for all (virtual(8) allows no $1 in its map's results): each copy is
        # told apart by the Delivered-To field virtual(8) puts on top of it
        if self.mailboxes is None:
            boxes = [rf"/@{re.escape(DOMAIN)}$/ {DOMAIN}/"]
        else:
            boxes = [rf"/^{re.escape(a)}$/ {DOMAIN}/" for a in sorted(self.mailboxes)]
        (self.etc / "mailboxes").write_text("\n".join(boxes) + "\n")
        refuse = [rf"/^{re.escape(a)}$/ {action}" for a, action in sorted(self.refuse.items())]
        (self.etc / "refuse").write_text("\n".join(refuse) + "\n")
        for name, data in self.files.items():  # a test's throwaway TLS key among them
            (self.etc / name).write_bytes(data)
        if self.logins:
            self._write_sasldb()
        # Postfix re-reads a file changed within the last second until it is older (a file
        # still being edited), 0.3 s at a time: dated back, it is read at once
        past = time.time() - 10
        for path in self.etc.rglob("*"):
            os.utime(path, (past, past))

    def _write_sasldb(self) -> None:
        tool = shutil.which("saslpasswd2")
        if tool is None:
            pytest.skip("SMTP AUTH needs saslpasswd2 (apt-get install sasl2-bin libsasl2-modules)")
        (self.etc / "sasl").mkdir(exist_ok=True)
        db = self.etc / "sasldb2"
        (self.etc / "sasl" / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
            f"sasldb_path: {db}\n")
        for user, password in self.logins.items():
            subprocess.run([tool, "-p", "-c", "-f", str(db), "-u", "relay.test", user],
                           input=password, text=True, check=True, capture_output=True)
        postfix = pwd.getpwnam("postfix")
        os.chown(db, postfix.pw_uid, postfix.pw_gid)  # smtpd reads it as postfix

    def start(self, timeout: float = 20) -> None:
        for folder in ("queue", "data", "mail"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        postfix = pwd.getpwnam("postfix")
        for folder in ("data", "mail"):
            os.chown(self.root / folder, postfix.pw_uid, postfix.pw_gid)
        self.write_config()
        self._queue_folders()
        # master(8) itself as this process's child, not `postfix start` (its integrity
        # checks take seconds a test): stopped by its PID, reaped by wait()
        self.master = subprocess.Popen([MASTER, "-c", str(self.etc)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.master.poll() is not None or time.monotonic() > deadline:
                self.stop()
                why = self.master.stderr.read().decode() if self.master.stderr else ""
                raise RuntimeError(f"postfix did not listen on {self.port}: {why}{self.log()}")
            time.sleep(0.02)

    def _queue_folders(self) -> None:
        """What post-install create-missing makes: owners and modes as postfix-files has them."""
        postfix, postdrop = pwd.getpwnam("postfix"), grp.getgrnam("postdrop")
        queue = self.root / "queue"
        for name, mode, gid in [*((q, 0o700, postfix.pw_gid) for q in _OWN_QUEUES),
                                ("maildrop", 0o730, postdrop.gr_gid),
                                ("public", 0o710, postdrop.gr_gid)]:
            (queue / name).mkdir(exist_ok=True)
            os.chown(queue / name, postfix.pw_uid, gid)
            (queue / name).chmod(mode)
        (queue / "pid").mkdir(exist_ok=True)

    def reload(self, **changes: object) -> None:
        """New settings, mailboxes or refusals; the daemons re-read them (postfix reload)."""
        for name, value in changes.items():
            setattr(self, name, value)
        self.write_config()
        assert self.master is not None
        self.master.send_signal(signal.SIGHUP)  # as `postfix reload` does
        time.sleep(0.3)  # the master signals its daemons; a new smtpd reads the new files

    def stop(self) -> None:
        """SIGTERM to the master this fixture started: it stops its daemons and exits."""
        if self.master is None or self.master.poll() is not None:
            return
        self.master.send_signal(signal.SIGTERM)
        try:
            self.master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait()

    def delivered(self, timeout: float = 15) -> Counter[str]:
        """Copies delivered per address, once the queue is empty (delivery follows the 250)."""
        deadline = time.monotonic() + timeout
        while self._queued() and time.monotonic() < deadline:
            time.sleep(0.05)
        return Counter(_delivered_to(copy) for copy in self._copies())

    def _copies(self) -> list[bytes]:
        box = self.root / "mail" / DOMAIN / "new"
        return [p.read_bytes() for p in sorted(box.iterdir())] if box.exists() else []

    def messages(self, address: str) -> list[bytes]:
        """The copies delivered to one address, as stored (Postfix's own headers first)."""
        return [c for c in self._copies() if _delivered_to(c) == address.lower()]

    def _queued(self) -> int:
        queue = self.root / "queue"
        return sum(1 for q in _QUEUES if (queue / q).exists()
                   for p in (queue / q).rglob("*") if p.is_file())

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""


def _delivered_to(copy: bytes) -> str:
    """The address virtual(8) delivered a copy to: the Delivered-To field it put on top."""
    for line in copy.split(b"\n", 3)[:3]:  # after Return-Path and X-Original-To
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.lower() == "delivered-to":
            return value.strip().lower()
    raise AssertionError(f"no Delivered-To on top of {copy[:200]!r}")


@pytest.fixture
def postfix_relay() -> Iterator[Callable[..., PostfixRelay]]:
    """start(**fields): a running private Postfix (fields of PostfixRelay); all stopped and
    their folders deleted when the test ends."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    started: list[PostfixRelay] = []

    def start(**fields: object) -> PostfixRelay:
        root = Path(tempfile.mkdtemp(prefix="postfix-relay-"))
        root.chmod(0o755)  # the postfix user walks into its queue and mail folders
        relay = PostfixRelay(root, **fields)  # type: ignore[arg-type]
        started.append(relay)
        relay.start()
        return relay

    yield start
    for relay in started:
        relay.stop()
        shutil.rmtree(relay.root, ignore_errors=True)
