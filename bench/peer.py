"""A peer in the same bench: mailmerge (https://github.com/awdeorio/mailmerge), installed into
the bench's own environment (bench/.peer-venv, made on first use), sending the same message to
the same sink. It opens one SMTP connection per message, as it does in real use."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
PEER_VERSION = "mailmerge==2.3.0"


def mailmerge_bin() -> Path | None:
    """The mailmerge command of the bench's environment, installed if missing; None (with the
    reason printed) when it cannot be installed here."""
    command = PEER_VENV / "bin" / "mailmerge"
    if command.exists():
        return command
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", PEER_VERSION], check=True)
    except subprocess.CalledProcessError as failed:
        print(f"bench: mailmerge could not be installed ({failed}); its row is skipped",
              flush=True)
        return None
    return command


def mailmerge_run(port: int, message: bytes, count: int, work: Path) -> float:
    """Messages per second mailmerge reaches sending `message` to `count` readers."""
    command = mailmerge_bin()
    if command is None:
        return 0.0
    work.mkdir(parents=True, exist_ok=True)
    head, _, body = message.decode("utf-8", "replace").partition("\r\n\r\n")
    headers = [line for line in head.split("\r\n")
               if not line.lower().startswith(("to:", "dkim-signature:"))]
    template = ("To: {{email}}\n" + "\n".join(headers) + "\n\n{% raw %}" + body
                + "{% endraw %}")
    (work / "template.txt").write_text(template, encoding="utf-8")
    with open(work / "database.csv", "w", encoding="utf-8") as out:
        out.write("email\n")
        out.writelines(f"reader{i:06d}@example.com\n" for i in range(count))
    (work / "server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\nsecurity = Never\n", encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([str(command), "--no-dry-run", "--no-limit", "--output-format", "raw",
                           "--template", str(work / "template.txt"),
                           "--database", str(work / "database.csv"),
                           "--config", str(work / "server.conf")],
                          cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mailmerge failed ({done.returncode}): {done.stderr[-2000:]}")
    return count / (time.monotonic() - started)
