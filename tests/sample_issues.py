"""The sample issue as the tests know it: a November issue scheduled for the 5th.

The shipped sample (issues/2026-11*.md) has no send_at, so that `make send` sends it on any
day (an issue without send_at is never off schedule). The tests pin its clock instead: this
module copies issues/ once per test process and puts `send_at: 2026-11-05T09:00` on the line
where the sample keeps it as a comment, so line numbers stay those of the shipped files.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEND_AT = "2026-11-05T09:00"
_MARK = "# send_at:"


def _scheduled_copy() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="newsletter-sample-issues-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = folder / "issues"
    shutil.copytree(REPO / "issues", target)
    for draft in target.glob("2026-11*.md"):
        lines = draft.read_text(encoding="utf-8").split("\n")
        lines = [f"send_at: {SEND_AT}" if line.startswith(_MARK) else line for line in lines]
        draft.write_text("\n".join(lines), encoding="utf-8")
    return target


SAMPLE_ISSUES = _scheduled_copy()
