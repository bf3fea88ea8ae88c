"""The commands that serve or write web pages: `serve` (the public app), `preview ISSUE` (the
live preview on this machine) and `archive` (the static site of sent issues)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.audience.tokens import secret_from_env
from newsletter.cli.context import config_of, open_store
from newsletter.cli.output import say, warn
from newsletter.compose.drafts import check_issue_id, draft_path
from newsletter.compose.live_findings import Findings, Key
from newsletter.deliver.send import Transports
from newsletter.errors import InputError
from newsletter.web.archive import build_archive
from newsletter.web.archive_pages import published_editions
from newsletter.web.live_preview import LivePreview, Rendered
from newsletter.web.preview_app import create_preview_app
from newsletter.web.serving import listen, serve


def cmd_serve(args: argparse.Namespace) -> int:
    config = config_of(args)
    if not secret_from_env()[1] and not args.dev:
        raise InputError("NEWSLETTER_SECRET is not set: the unsubscribe and confirm links "
                         "would be forgeable (`--dev` serves with a development secret, "
                         "for trying it out on this machine only)")
    def ready() -> None:
        say(f"serving {config.name} at http://{args.host}:{args.port}"
            f"{urlsplit(config.base_url).path or '/'} (public address {config.base_url}); "
            "Ctrl-C stops")
        say(f"confirmation mail goes out through {Transports(config).description}; "
            "failures are logged here")

    serve(config, args.host, args.port, threads=args.threads, on_ready=ready)
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    config = config_of(args)
    issue, _, language = args.issue.partition(".")
    check_issue_id(issue)
    first = draft_path(config.issues_dir, issue, language.lower(), config.default_language)
    if not first.exists():
        raise InputError(f"no draft: start one with `newsletter new {args.issue}`",
                         where=str(first))

    def rebuilt(r: Rendered) -> None:
        if r.errors:
            say(f"{r.issue} ({r.language or '?'}): {len(r.errors)} error(s), shown on the page")
        else:
            say(f"rebuilt {r.issue} ({r.language}) in {r.seconds:.1f} s")

    def checked(key: Key, f: Findings) -> None:
        say(f"checked {issue} ({key[1]}) in {f.seconds:.1f} s: {f.error_count} error(s), "
            f"{len(f.problems) - f.error_count} warning(s)")

    preview = LivePreview(args.config, issue, on_rebuild=rebuilt, on_checked=checked)
    server = listen(create_preview_app(preview, host=args.host), args.host, args.port)
    if not _is_loopback(args.host):
        warn(f"{args.host} is not a loopback address: anyone who reaches it reads the drafts "
             "(the preview has no password)")
    start = f"?lang={language.lower()}" if language else ""
    port = getattr(server, "effective_port", args.port)  # several sockets: the asked-for one
    say(f"previewing {issue} ({', '.join(preview.languages(config.default_language))}) at "
        f"http://{_url_host(args.host)}:{port}/{start}; the page follows saved changes to the "
        "drafts, snapshots, templates and newsletter.toml; Ctrl-C stops")
    signal.signal(signal.SIGTERM, _interrupt)  # waitress stops cleanly on KeyboardInterrupt
    with contextlib.suppress(KeyboardInterrupt):  # waitress returns on it, or lets it out
        server.run()
    preview.checker.close()
    say(f"preview of {issue} stopped")
    return 0


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_archive(args: argparse.Namespace) -> int:
    started = time.monotonic()
    config = config_of(args)
    out = Path(args.out) if getattr(args, "out", None) else config.root / "public"
    with open_store(config) as conn:
        published = published_editions(conn, config)
    groups = build_archive(config, published, out)
    langs = ", ".join(g.language for g in groups)
    if groups:
        say(f"  {out / 'index.html'} + {out / 'LANG/index.html'}: "
            f"{1 + len(groups)} index page(s) ({langs})")
        say(f"  {out / 'issues'}{os.sep}: {len(published)} edition page(s)")
        say(f"  {out / 'feed.xml'} + {out / 'LANG/feed.xml'}: {len(groups)} Atom feed(s) ({langs})")
    else:
        say(f"  {out / 'index.html'}: no issues published yet")
    say(f"archive: {len({p.edition.issue for p in published})} issue(s), {len(groups)} "
        f"language(s), {1 + len(groups) + len(published)} page(s), {len(groups)} feed(s) "
        f"in {out}{os.sep} in {time.monotonic() - started:.1f} s")
    return 0


def add_serve_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    cmd.add_argument("--threads", type=int, default=4, help="worker threads (default 4)")
    cmd.add_argument("--dev", action="store_true",
                     help="allow running without NEWSLETTER_SECRET (never on a public host)")


def add_preview_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("issue", metavar="ISSUE",
                     help="YYYY-MM (its drafts in issues/); YYYY-MM.LANG opens that edition first")
    cmd.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    cmd.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 picks one)")


def add_archive_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--out", metavar="DIR", help="the site's folder, replaced on each run "
                     "(default: public/ beside newsletter.toml)")
