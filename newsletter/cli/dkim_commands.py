"""`newsletter dkim keygen`: make a key pair, print the DNS record and the [dkim] lines."""

from __future__ import annotations

import argparse
from pathlib import Path

from newsletter.cli.output import say
from newsletter.config import Config, load_config
from newsletter.deliver.dkim import KINDS
from newsletter.deliver.dkimkeys import KeyPair, config_lines, keygen
from newsletter.errors import InputError


def cmd_dkim(args: argparse.Namespace) -> int:
    """`newsletter dkim keygen`: make a key, print its DNS record and the [dkim] lines."""
    if args.action != "keygen":
        raise InputError(f"unknown dkim action {args.action!r} (known: keygen)")
    # keygen works before there is a config: it may be the first thing an operator runs
    config = load_config(args.config) if Path(args.config).exists() else None
    selector = args.selector or (config.dkim_selector if config else "")
    domain = args.domain or (config and (config.dkim_domain or config.sender_domain)) or ""
    if not selector:
        raise InputError("dkim keygen needs --selector: a name for this key, new for each "
                         "key (e.g. nl2026)")
    if not domain:
        raise InputError("dkim keygen needs --domain: the domain of the From address")
    root = config.root if config else Path()
    pair = keygen(selector, domain, Path(args.out) if args.out else root / "dkim",
                  kind=args.kind)
    say(f"wrote {pair.private_file} (the private key: mode 0600; keep it secret, out of git)")
    say(f"wrote {pair.dns_file} (the DNS record below)")
    say(f"publish this TXT record in the DNS of {pair.domain}:")
    say(f"  name:  {pair.record_name}")
    say(f"  value: {pair.record_value}")
    say(f"  zone file: {pair.zone_line}")
    _next_steps(args.config, config, pair, root)
    label = f"RSA-{pair.bits}" if pair.kind == "rsa" else "Ed25519"
    say(f"made an {label} DKIM key for {pair.record_name}")
    return 0


def _next_steps(config_file: Path, config: Config | None, pair: KeyPair, root: Path) -> None:
    when = f"once `dig +short TXT {pair.record_name}` shows it"
    if config and config.dkim_key_file and config.dkim_selector == pair.selector \
            and config.dkim_key_file.resolve() == pair.private_file.resolve():
        say(f"{config_file} names this key already: the next send signs with it, so publish "
            "the record first")
        return
    say(f"then, {when}, add to {config_file}:")
    for line in config_lines(pair, root):
        say(f"  {line}")
    if config and config.dkim_selector:
        say(f"(until then keep signing with {config.dkim_selector!r}, and leave its record "
            "in DNS for a week after the switch)")


def add_dkim_arguments(cmd: argparse.ArgumentParser) -> None:
    sub = cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("keygen", help="make a key pair; print the DNS record to publish")
    gen.add_argument("--selector", help="a name for this key, new for each key (default: "
                                        "dkim.selector from the config)")
    gen.add_argument("--domain", help="the signing domain (default: dkim.domain, else the "
                                      "domain of newsletter.from)")
    gen.add_argument("--out", metavar="DIR", help="folder for SELECTOR.private and "
                                                  "SELECTOR.dns (default: dkim/)")
    gen.add_argument("--kind", choices=KINDS, default="rsa",
                     help="rsa (default; every receiver verifies it) or ed25519 (RFC 8463)")
