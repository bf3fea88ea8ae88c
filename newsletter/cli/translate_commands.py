"""`newsletter translate export|import|done`: the XLIFF 2.0 round trip (compose/xliff_roundtrip)
and marking a translation up to date."""

from __future__ import annotations

import argparse
from pathlib import Path

from newsletter.cli.context import config_of, open_store
from newsletter.cli.output import say
from newsletter.compose.drafts import ISSUE_RE
from newsletter.compose.translate import LANG_RE, mark_translated
from newsletter.compose.xliff_roundtrip import export_issue, import_file
from newsletter.config import Config
from newsletter.errors import InputError


def cmd_translate(args: argparse.Namespace) -> int:
    config = config_of(args)
    with open_store(config) as conn:
        if args.action == "done":
            return _cmd_done(config, args.edition, args.sections)
        if args.action == "export":
            done = export_issue(config, conn, args.issue, args.lang.lower(),
                                Path(args.out) if args.out else None)
            say(f"wrote {done.path}: {done.units} units, {done.prefilled} pre-filled from the "
                f"translation memory ({config.default_language} -> {args.lang.lower()})")
        else:
            result = import_file(config, conn, Path(args.file), force=args.force)
            edition = result.path.name.removesuffix(".md")
            say(f"wrote {result.path} from {args.file}: {result.units} units, stored in the "
                f"translation memory; next: `newsletter check {edition}`")
    return 0


def _cmd_done(config: Config, edition: str, sections: list[str]) -> int:
    issue, _, language = edition.removesuffix(".md").partition(".")
    if not ISSUE_RE.match(issue) or not LANG_RE.match(language):
        raise InputError(f"name a translation as YYYY-MM.LANG (2026-11.fr), not {edition!r}")
    path = config.issues_dir / f"{issue}.{language}.md"
    if not path.exists():
        raise InputError(f"no such translation (`newsletter new {issue}.{language}`)",
                         where=str(path))
    marked = mark_translated(path, config.issues_dir / f"{issue}.md", sections,
                             root=config.root)
    say(f"{path}: translated_from now follows today's {issue}.md for {len(marked)} "
        f"section(s): {', '.join(marked)}")
    return 0


def add_translate_arguments(cmd: argparse.ArgumentParser) -> None:
    actions = cmd.add_subparsers(dest="action", required=True, metavar="export|import|done")
    export = actions.add_parser("export", help="write ISSUE's text as XLIFF 2.0 for a translator")
    export.add_argument("issue", metavar="ISSUE", help="YYYY-MM, the default edition")
    export.add_argument("--lang", required=True, help="the target language (fr, zh, ...)")
    export.add_argument("--out", help="the file to write (default build/xliff/ISSUE.LANG.xlf)")
    imp = actions.add_parser("import", help="write ISSUE.LANG.md from a translated XLIFF file")
    imp.add_argument("file", metavar="FILE", help="the translated .xlf file")
    imp.add_argument("--force", action="store_true", help="replace an existing ISSUE.LANG.md")
    done = actions.add_parser("done", help="record that ISSUE.LANG follows today's default "
                                           "edition in these sections (default: all)")
    done.add_argument("edition", metavar="ISSUE.LANG", help="the translation, e.g. 2026-11.fr")
    done.add_argument("sections", metavar="SECTION", nargs="*",
                      help="section headings of the default edition, as `check` names them")
