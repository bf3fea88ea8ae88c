"""A bench project: the sample newsletter with N generated subscribers and the bench's
[delivery] settings, sending through the sink."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from procs import REPO, run


def make_project(root: Path, n: int, connections: int, rate: float, dkim: bool, *,
                 batch: int | None = None, subscribers: bool = True,
                 processes: int | None = None, dkim_kind: str = "rsa") -> Path:
    """The sample newsletter with n generated subscribers (`subscribers=False`: the CSV is
    written but the config names none, for the PostgreSQL senders that share one list);
    batch, processes: [delivery] batch_size and processes (None: the program's default);
    dkim_kind: the key `newsletter dkim keygen --kind` makes (rsa: 2048 bits, or ed25519)."""
    root.mkdir(parents=True)
    for folder in ("templates", "feeds"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "issues").mkdir()
    for name in ("2026-11.md", "2026-11.items.yaml"):
        shutil.copy(REPO / "issues" / name, root / "issues" / name)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    config = re.sub(r"connections = \d+", f"connections = {connections}", config)
    config = re.sub(r"rate_per_second = [\d.]+", f"rate_per_second = {rate}", config)
    # The sample writes the Maildir; the bench sends through its sink (send refuses a
    # NEWSLETTER_SMTP_URL when transport = "maildir").
    config = re.sub(r'transport = "maildir"', 'transport = "smtp"', config)
    for key, value in (("batch_size", batch), ("processes", processes)):
        if value is not None:
            config = config.replace("[delivery]\n", f"[delivery]\n{key} = {value}\n", 1)
    if not subscribers:
        config = re.sub(r'files = \["subscribers/sample.csv"\]', "files = []", config)
    if dkim:
        run([sys.executable, "-m", "newsletter", "--config", str(root / "newsletter.toml"),
             "dkim", "keygen", "--selector", "bench", "--domain", "ipbusiness.example.org",
             "--out", str(root / "dkim"), "--kind", dkim_kind], root, config_text=config)
        config += ('\n[dkim]\nselector = "bench"\ndomain = "ipbusiness.example.org"\n'
                   'key_file = "dkim/bench.private"\n')
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    (root / "subscribers").mkdir()
    with open(root / "subscribers" / "sample.csv", "w", encoding="utf-8") as out:
        out.write("email,name,language,tags\n")
        for i in range(n):
            out.write(f"reader{i:06d}@example.com,Reader Number {i},en,bench\n")
    return root
