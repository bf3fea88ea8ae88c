"""The CLI's output read by a pipe that closes early (`newsletter subscribers list | head`):
the command stops quietly, with no "Broken pipe" line and no traceback on stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_reader_that_closes_the_pipe_early_gets_no_error_line(tmp_path: Path) -> None:
    shutil.copy(REPO / "newsletter.toml", tmp_path / "newsletter.toml")
    rows = "".join(f"reader{n:05d}@example.org,Reader {n},en,\n" for n in range(5000))
    (tmp_path / "list.csv").write_text("email,name,language,tags\n" + rows, encoding="utf-8")
    env = {**os.environ, "NEWSLETTER_SECRET": "s3cret"}
    env.pop("NEWSLETTER_DATABASE_URL", None)
    command = [sys.executable, "-m", "newsletter", "--config", "newsletter.toml", "subscribers"]
    subprocess.run([*command, "import", "list.csv"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([*command, "list"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout and proc.stderr
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does: the rest (more than a pipe buffer) has nowhere
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert b"reader" in first
    assert err == "", err
    assert proc.returncode == 1
