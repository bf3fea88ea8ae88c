"""Reading the return path: Maildir, mbox, a folder of .eml files, and IMAP on a real Dovecot."""

from __future__ import annotations

import mailbox
import os
import re
import socket
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest
from imap_server import (  # noqa: F401
    PASSWORD,
    USER,
    Dovecot,
    dovecot,
    dovecot_or_skip,
    imap_ca,
    trusted,
)

from newsletter.audience.imap_mailbox import KEYWORD, ImapSource, mailbox_name, parse_imap_url
from newsletter.audience.mailboxes import MAX_MESSAGE_BYTES, open_source
from newsletter.errors import InputError, NewsletterError

CONFIG = """\
[newsletter]
name = "IP for Business"
from = "IP for Business <newsletter@ipbusiness.example.org>"
base_url = "https://ipbusiness.example.org/newsletter"
list_id = "ip-for-business.ipbusiness.example.org"
postal_address = "IP for Business, 34 chemin des Colombettes, 1211 Geneva 20, Switzerland"

[store]
path = "t.db"

[bounces]
{bounces}
"""


def note(n: int, *, to: str = "newsletter@ipbusiness.example.org") -> bytes:
    """A small message that is no report (the classifier ignores it)."""
    msg = EmailMessage()
    msg["From"] = "someone@example.com"
    msg["To"] = to
    msg["Subject"] = f"note {n}"
    msg["Message-ID"] = f"<note-{n}@example.com>"
    msg.set_content(f"Hello, this is note {n}.\n")
    return msg.as_bytes()


def read_all(spec: str, **options: object) -> list[tuple[str, bytes]]:
    with open_source(spec, **options) as source:  # type: ignore[arg-type]
        return list(source.messages())


# --- files ------------------------------------------------------------------------------------

def test_a_maildir_yields_every_message_in_arrival_order_labelled_by_its_name(
        tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    keys = [box.add(note(n)) for n in range(3)]
    box.lock()  # a cur/ message with flags is read as well as the new/ ones
    msg = box.get_message(keys[2])
    msg.set_subdir("cur")
    msg.add_flag("S")
    box[keys[2]] = msg

    found = read_all(str(tmp_path / "Maildir"))

    assert [label for label, _ in found] == sorted(keys)
    assert [raw.count(b"note ") for _, raw in found] == [2, 2, 2]


def test_an_mbox_labels_each_message_path_colon_index(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    for n in range(3):
        box.add(note(n))
    box.close()

    found = read_all(str(path))

    assert [label for label, _ in found] == [f"{path}:0", f"{path}:1", f"{path}:2"]
    assert b"Subject: note 2" in found[2][1]


def test_a_folder_of_eml_files_is_read_by_name_skipping_other_files_and_links(
        tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "b.eml").write_bytes(note(2))
    (folder / "a.EML").write_bytes(note(1))
    (folder / "notes.txt").write_bytes(note(3))
    (folder / ".hidden.eml").write_bytes(note(4))
    secret = tmp_path / "secret.eml"
    secret.write_bytes(b"Subject: not in the folder\n\nprivate\n")
    (folder / "link.eml").symlink_to(secret)
    (folder / "sub.eml").mkdir()
    os.mkfifo(folder / "pipe.eml")  # would block a reader that opened it plainly

    found = read_all(str(folder))

    assert [label for label, _ in found] == ["a.EML", "b.eml"]
    assert b"note 1" in found[0][1]


def test_a_huge_file_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "big.eml").write_bytes(note(1) + b"x" * (MAX_MESSAGE_BYTES + 10))

    [(_, raw)] = read_all(str(folder))

    assert len(raw) == MAX_MESSAGE_BYTES


def test_marking_a_file_message_done_leaves_the_files_alone(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.eml").write_bytes(note(1))
    with open_source(str(folder)) as source:
        [(label, _)] = list(source.messages())
        source.mark_done(label)
    assert [p.name for p in folder.iterdir()] == ["a.eml"]
    assert read_all(str(folder))[0][0] == "a.eml"


@pytest.mark.parametrize("make, why", [
    (lambda root: root / "missing", "not a Maildir"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "this folder has no .eml file"),
    (lambda root: (root / "x.txt").write_text("hello\n") and root / "x.txt", "mbox file"),
])
def test_a_bad_path_is_an_input_error_naming_it(tmp_path: Path, make, why: str) -> None:  # noqa: ANN001
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        open_source(str(path))
    assert str(caught.value).startswith(f"{path}: not a Maildir")
    assert why in str(caught.value)


# --- IMAP URLs (no server needed) --------------------------------------------------------------

@pytest.mark.parametrize("url, password, message", [
    ("imaps://bounces@mail.example.org/INBOX", "", "NEWSLETTER_IMAP_PASSWORD is not set"),
    ("imaps://bounces:pw@mail.example.org/INBOX", "x", "must not carry the password"),
    ("imap://bounces@mail.example.org/INBOX", "x", "plain imap:// would send the password"),
    ("imaps://mail.example.org/INBOX", "x", "needs a user"),
    ("imaps:///INBOX", "x", "needs a host"),
    ("imaps://bounces@mail.example.org:99999/", "x", "bad port"),
])
def test_a_bad_imap_url_is_an_input_error(url: str, password: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        open_source(url, environ={"NEWSLETTER_IMAP_PASSWORD": password})
    assert message in str(caught.value)
    assert "pw" not in str(caught.value).replace("password", "")


def test_an_imap_url_defaults_to_the_inbox_and_port_993() -> None:
    s = parse_imap_url("imaps://b%40x@mail.example.org", "secret")
    assert (s.host, s.port, s.user, s.mailbox) == ("mail.example.org", 993, "b@x", "INBOX")
    assert "secret" not in s.display


def test_mailbox_names_are_quoted_in_modified_utf7() -> None:
    # RFC 3501 5.1.3's own example, "~peter/mail/台北/日本語"
    assert mailbox_name("~peter/mail/台北/日本語") == '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    assert mailbox_name('A & "B"') == '"A &- \\"B\\""'
    with pytest.raises(InputError):
        mailbox_name("a\r\nb")


# --- IMAP against Dovecot -------------------------------------------------------------------

@pytest.fixture
def imap_env(monkeypatch: pytest.MonkeyPatch, trusted: None) -> None:  # noqa: F811
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", PASSWORD)


def test_imap_messages_are_read_flagged_and_skipped_by_the_next_run(
        dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    dovecot.append(note(1), note(2), note(3))

    with open_source(dovecot.url()) as source:
        found = list(source.messages())
        for label, _ in found[:2]:
            source.mark_done(label)

    assert [label for label, _ in found] == ["uid 1", "uid 2", "uid 3"]
    assert b"Subject: note 3" in found[2][1]
    flags = dovecot.flags()
    assert KEYWORD in flags[1] and KEYWORD in flags[2] and KEYWORD not in flags[3]
    assert all("\\Seen" not in f and "\\Deleted" not in f for f in flags.values())
    assert [label for label, _ in read_all(dovecot.url())] == ["uid 3"]


def test_imap_messages_move_to_the_processed_mailbox_flagged(
        dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    dovecot.create("Processed")
    dovecot.append(note(1), note(2))

    with open_source(dovecot.url(), move_to="Processed") as source:
        for label, _ in source.messages():
            source.mark_done(label)

    assert dovecot.flags("INBOX") == {}
    moved = dovecot.flags("Processed")
    assert len(moved) == 2 and all(KEYWORD in f for f in moved.values())


def test_without_move_a_copy_goes_to_the_processed_mailbox_and_the_original_stays_flagged(
        dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    dovecot.create("Processed")
    dovecot.append(note(1))

    with open_source(dovecot.url(), move_to="Processed") as source:
        assert isinstance(source, ImapSource) and source.can_move  # Dovecot has MOVE
        source.can_move = False  # as a server without RFC 6851
        for label, _ in source.messages():
            source.mark_done(label)

    assert [KEYWORD in f for f in dovecot.flags("INBOX").values()] == [True]
    assert len(dovecot.flags("Processed")) == 1
    assert read_all(dovecot.url(), move_to="Processed") == []


def test_a_server_that_refuses_our_keyword_gets_seen_instead(
        imap_ca, imap_env: None) -> None:  # noqa: ANN001, F811
    dovecot_or_skip()
    server = Dovecot(imap_ca, extra="mail_max_keyword_length = 0\n")  # still announces \\*
    try:
        server.start()
        server.append(note(1), note(2))
        with open_source(server.url()) as source:
            for label, _ in source.messages():
                source.mark_done(label)
        assert server.flags() == {1: {"\\Seen"}, 2: {"\\Seen"}}
    finally:
        server.stop()


def test_a_read_only_run_flags_nothing(dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    dovecot.append(note(1))
    with open_source(dovecot.url(), read_only=True) as source:
        for label, _ in source.messages():
            source.mark_done(label)
    assert dovecot.flags() == {1: set()}


def test_a_mailbox_with_a_non_ascii_name_is_read(dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    with dovecot.client() as imap:
        assert imap.create(mailbox_name("Rückläufer"))[0] == "OK"
        assert imap.append(mailbox_name("Rückläufer"), None, None, note(1))[0] == "OK"
    assert len(read_all(dovecot.url("R%C3%BCckl%C3%A4ufer"))) == 1


def test_plain_imap_is_allowed_to_localhost(dovecot: Dovecot, imap_env: None) -> None:  # noqa: F811
    dovecot.append(note(1))
    assert [label for label, _ in read_all(dovecot.url(scheme="imap"))] == ["uid 1"]


def test_imap_failures_are_one_line_errors_naming_the_server(
        dovecot: Dovecot, imap_env: None, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def failure(url: str) -> str:
        with pytest.raises(NewsletterError) as caught, open_source(url):
            pass
        text = str(caught.value)
        assert "\n" not in text and PASSWORD not in text
        return text

    assert "no mailbox 'Nowhere'" in failure(dovecot.url("Nowhere"))
    with pytest.raises(NewsletterError, match="no mailbox 'Nowhere' to move processed"), \
            open_source(dovecot.url(), move_to="Nowhere"):
        pass
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert re.search(r"cannot connect: \[Errno \d+\] Connection refused",
                     failure(f"imaps://{USER}@127.0.0.1:{closed}/INBOX"))
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "wrong")
    assert re.search(r"login refused for bounces: .*[Aa]uthentication failed",
                     failure(dovecot.url()))


def test_an_untrusted_certificate_is_refused(dovecot: Dovecot,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", PASSWORD)
    empty = Path(dovecot.root) / "no-cas.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))  # trust nothing: not even the system CAs
    monkeypatch.setenv("SSL_CERT_DIR", str(dovecot.root))
    with pytest.raises(NewsletterError) as caught, open_source(dovecot.url()):
        pass
    assert "certificate not trusted" in str(caught.value)


# --- the command --------------------------------------------------------------------------

def cli(tmp_path: Path, capsys: pytest.CaptureFixture, *args: str,
        bounces: str = "") -> tuple[int, str, str]:
    from newsletter.cli.main import main

    config = tmp_path / "newsletter.toml"
    config.write_text(CONFIG.format(bounces=bounces), encoding="utf-8")
    capsys.readouterr()
    code = main(["--config", str(config), "bounces", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bounces_reads_imap_and_a_rerun_changes_nothing(
        dovecot: Dovecot, imap_env: None, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture) -> None:
    dovecot.append(note(1), note(2))

    code, out, _ = cli(tmp_path, capsys, dovecot.url(), "--dry-run")
    assert code == 0 and "2 report(s) read" in out
    assert dovecot.flags() == {1: set(), 2: set()}  # a dry run leaves no trace

    code, out, err = cli(tmp_path, capsys, dovecot.url())
    assert code == 0, err
    assert "2 report(s) read, 2 new" in out.splitlines()[-1]
    assert all(KEYWORD in f for f in dovecot.flags().values())
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM processed_reports").fetchone()[0] == 2

    code, out, _ = cli(tmp_path, capsys, dovecot.url())
    assert code == 0 and out.splitlines()[-1].startswith("bounces: 0 report(s) read")


def test_bounces_moves_to_imap_move_to(dovecot: Dovecot, imap_env: None,  # noqa: F811
                                       tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dovecot.create("Processed")
    dovecot.append(note(1))
    code, out, err = cli(tmp_path, capsys, dovecot.url(), bounces='imap_move_to = "Processed"')
    assert code == 0, err
    assert dovecot.flags("INBOX") == {} and len(dovecot.flags("Processed")) == 1


@pytest.mark.parametrize("case", ["password", "mailbox", "unset"])
def test_bounces_imap_errors_exit_with_one_line(
        dovecot: Dovecot, imap_env: None, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    url = dovecot.url("Nowhere" if case == "mailbox" else "INBOX")
    if case == "password":
        monkeypatch.setenv("NEWSLETTER_IMAP_PASSWORD", "wrong")
    if case == "unset":
        monkeypatch.delenv("NEWSLETTER_IMAP_PASSWORD")
    code, out, err = cli(tmp_path, capsys, url)
    assert code == (2 if case == "unset" else 1)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("newsletter: ")
    assert not (tmp_path / "t.db").exists()  # nothing opened before the mailbox was
