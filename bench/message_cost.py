"""The send path's CPU cost a message, in-process and without the wire: assemble, DKIM-sign
(off, RSA-2048, Ed25519) and the SMTP DATA payload, for the sample editions. The end-to-end
bench (run.py) also waits on the sink's socket and on the ledger's commits; this one measures
only what building a message costs, in CPU time, so a busy machine disturbs it less.

    python bench/message_cost.py [--n 2000] [--languages en,ar] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.compose.drafts import load_draft
from newsletter.compose.message import Personal, assemble, make_envelope, message_id, prepare
from newsletter.compose.render import render_edition
from newsletter.compose.snapshot import read_snapshot
from newsletter.config import load_config
from newsletter.deliver.dkim import DkimSigner
from newsletter.deliver.smtp_data import data_payload
from newsletter.model import Edition

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "ipbusiness.example.org"


def sample_edition(language: str) -> Edition:
    config = load_config(REPO / "newsletter.toml")
    suffix = "" if language == config.default_language else f".{language}"
    draft = load_draft(REPO / "issues" / f"2026-11{suffix}.md", timezone=config.timezone,
                       default_language=config.default_language)
    items = read_snapshot(REPO / "issues" / f"2026-11{suffix}.items.yaml").items
    return render_edition(config, draft, items)


def signers() -> dict[str, DkimSigner | None]:
    keys = {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ed25519": ed25519.Ed25519PrivateKey.generate()}
    made: dict[str, DkimSigner | None] = {"off": None}
    for kind, key in keys.items():
        made[kind] = DkimSigner("bench", DOMAIN, kind, Path("bench.private"), key)
    return made


def run(language: str, signer: DkimSigner | None, n: int) -> tuple[float, int]:
    """(CPU seconds a message, octets of the last message) for n readers of one edition."""
    env = make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}",
                        f"sme-team@{DOMAIN}", f"ip-for-business.{DOMAIN}")
    prepared = prepare(sample_edition(language), env)
    started, payload = time.process_time(), b""
    for i in range(n):
        email = f"reader{i:06d}@example.com"  # names of several lengths, as in a real list
        who = Personal(email, f"Reader Number {i}", f"https://{DOMAIN}/unsubscribe/t{i}",
                       message_id("2026-11", email, DOMAIN), "", "")
        data = assemble(prepared, env, who, datetime.now(UTC))
        if signer is not None:
            data = signer.sign(data)
        payload = data_payload(data)
    return (time.process_time() - started) / n, len(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--languages", default="en,ar")
    parser.add_argument("--profile", action="store_true", help="top functions, by own time")
    args = parser.parse_args()
    for language in args.languages.split(","):
        for kind, signer in signers().items():
            profile = cProfile.Profile() if args.profile else None
            if profile:
                profile.enable()
            seconds, size = run(language, signer, args.n)
            if profile:
                profile.disable()
            print(f"{language} DKIM {kind}: {seconds * 1e6:,.0f} us CPU a message "
                  f"({size / 1024:.1f} KB)", flush=True)
            if profile:
                pstats.Stats(profile).sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    main()
