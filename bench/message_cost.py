"""The send path's CPU cost a message, in-process and without the wire: assemble, DKIM-sign
(off, RSA-2048, Ed25519) and the SMTP DATA payload, for the sample editions. The end-to-end
bench (run.py) also waits on the sink's socket and on the ledger's commits; this one measures
only what building a message costs, in CPU time, so a busy machine disturbs it less.

    python bench/message_cost.py [--n 2000] [--languages en,ar] [--profile] [--stages]

--stages splits a signature's cost: the body hash, the header hash input, the signature
itself (OpenSSL), and the rest of sign() (tags, base64, the prepended field).
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
from newsletter.deliver.dkim import _HEADERS, DkimSigner
from newsletter.deliver.dkim_body import body_digest
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


def readers(n: int) -> list[Personal]:
    made = []
    for i in range(n):
        email = f"reader{i:06d}@example.com"  # names of several lengths, as in a real list
        made.append(Personal(email, f"Reader Number {i}", f"https://{DOMAIN}/unsubscribe/t{i}",
                             message_id("2026-11", email, DOMAIN), "", ""))
    return made


def stages(language: str, signer: DkimSigner, n: int) -> dict[str, float]:
    """CPU microseconds a message of each part of sign(), over n messages built beforehand."""
    env = make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}",
                        f"sme-team@{DOMAIN}", f"ip-for-business.{DOMAIN}")
    prepared = prepare(sample_edition(language), env)
    messages = [assemble(prepared, env, who, datetime.now(UTC)) for who in readers(n)]
    data = _HEADERS.signed_data(messages[0][:messages[0].body_start])[1] + b"x" * 300
    parts = {
        "sign()": lambda m: signer.sign(m),
        "body hash": lambda m: body_digest(m, m.body_start),
        "header input": lambda m: _HEADERS.signed_data(m[:m.body_start]),
        "signature": lambda m: signer._sign_data(data),
    }
    took = {}
    for name, part in parts.items():
        started = time.process_time()
        for m in messages:
            part(m)
        took[name] = (time.process_time() - started) / n * 1e6
    took["rest"] = took["sign()"] - sum(v for k, v in took.items() if k != "sign()")
    return took


def run(language: str, signer: DkimSigner | None, n: int) -> tuple[float, int]:
    """(CPU seconds a message, octets of the last message) for n readers of one edition."""
    env = make_envelope("IP for Business", "IP for Business", f"newsletter@{DOMAIN}",
                        f"sme-team@{DOMAIN}", f"ip-for-business.{DOMAIN}")
    prepared = prepare(sample_edition(language), env)
    started, payload = time.process_time(), b""
    for who in readers(n):
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
    parser.add_argument("--stages", action="store_true", help="a signature's cost, by part")
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
            if args.stages and signer is not None:
                print("   " + ", ".join(f"{k} {v:.0f} us" for k, v in
                                        stages(language, signer, args.n).items()), flush=True)


if __name__ == "__main__":
    main()
