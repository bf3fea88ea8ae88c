"""Time and peak memory of `newsletter subscribers import` as the file grows (issue 17): writes
N-row CSVs (addresses at ~N/20 domains, names in several scripts, languages, tags), imports each
in a throwaway project (a fresh database) and prints rows / seconds / peak RSS (MB) of the child
process, then the seconds of a second import after one row of the file was edited.

    python bench/import_memory.py [--sizes 10000,100000] [--million] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMES = ("Ann Lee", "José Núñez", "Анна Петрова", "李小龙", "فاطمة الزهراء", "Chloé Martin",
         "", "O'Brien, Pat")
LANGUAGES = ("en", "fr", "es", "ru", "zh", "ar", "", "English", "français")
TAGS = ("", "news", "events;news", "members|board", "volunteers, donors")
# Most readers are at a few big providers, the rest at a long tail of their own domains (one
# domain per ~8 readers), a few of them internationalised (the full IDNA check).
PROVIDERS = ("gmail.com", "outlook.com", "yahoo.fr", "mail.ru", "yandex.ru", "qq.com",
             "163.com", "hotmail.com", "orange.fr", "gmx.de", "icloud.com", "web.de")
TAIL = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
TLDS = ("com", "org", "fr", "es", "ru", "cn", "ae", "co.uk", "de", "io")
IDN = ("bücher-{}.de", "пример-{}.рф", "例子{}.中国", "مثال{}.com", "café-{}.fr")
LOCALS = ("{f}.{l}", "{f}{n}", "{f}.{l}+news", "{F}.{L}", "{f}_{l}{n}", "{l}")
FIRST = ("ann", "jose", "anna", "li", "fatima", "chloe", "pat", "omar", "wei", "ivan")
LAST = ("lee", "nunez", "petrova", "xiaolong", "zahra", "martin", "obrien", "haddad", "chen")


def address(n: int, rows: int) -> str:
    """A deterministic, varied address for reader n of a list of rows."""
    f, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
    local = LOCALS[n % len(LOCALS)].format(f=f, l=last, F=f.title(), L=last.title(), n=n)
    if n % 200 == 7:
        domain = IDN[n % len(IDN)].format(n % 50)
    elif n % 5 < 3:
        domain = PROVIDERS[(n * 7) % len(PROVIDERS)]
    else:
        k = (n * 2654435761) % max(1, rows // 8)
        domain = f"{TAIL[k % len(TAIL)]}{k}.{TLDS[k % len(TLDS)]}"
    return f"{local}.{n}@{domain}" if "{n}" not in LOCALS[n % len(LOCALS)] else \
        f"{local}@{domain}"


def write_csv(path: Path, rows: int) -> Path:
    """rows subscribers, one in 1,000 a duplicate of an earlier address (merged)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "language", "tags"])
        for i in range(rows):
            n = i - 500 if i % 1000 == 999 else i
            writer.writerow([address(n, rows), NAMES[i % len(NAMES)],
                             LANGUAGES[i % len(LANGUAGES)], TAGS[i % len(TAGS)]])
    return path


def edit_one_line(path: Path, row: int) -> None:
    """Give one row another name, as an editor's correction does."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    email = lines[row].split(",", 1)[0]
    lines[row] = f"{email},Corrected Name,en,news\r\n"
    path.write_text("".join(lines), encoding="utf-8", newline="")


def make_project(root: Path) -> Path:
    """newsletter.toml, templates/ and issues/ of this repository; the database is new."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "issues", root / "issues")
    return root


def import_once(root: Path, csv_file: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `subscribers import` in a child process. Each run is
    its own child of a fresh helper, so RUSAGE_CHILDREN's maximum is this run's alone."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "s = time.perf_counter() - t\n"
        "if r.returncode not in (0, 2): sys.exit(r.stderr.decode()[-2000:])\n"
        "print(s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(REPO / ".venv/bin/newsletter"),
                          "--config", str(root / "newsletter.toml"), "subscribers", "import",
                          str(csv_file)], capture_output=True, text=True, cwd=root, check=False)
    if out.returncode:
        raise SystemExit(f"import failed: {out.stderr.strip()}")
    seconds, kb = out.stdout.split()
    return float(seconds), int(kb) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 rows (slow)")
    parser.add_argument("--keep", type=Path, help="write the CSVs and projects here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    work = args.keep or Path(tempfile.mkdtemp(prefix="import-bench-"))
    print(f"{'rows':>10} {'seconds':>8} {'peak RSS MB':>12} {'one-line edit: seconds':>23}")
    for rows in sizes:
        csv_file = write_csv(work / f"subscribers-{rows}.csv", rows)
        root = make_project(work / f"project-{rows}")
        seconds, mb = import_once(root, csv_file)
        edit_one_line(csv_file, rows // 2)
        edit, _ = import_once(root, csv_file)  # the same file again: only that row goes through
        print(f"{rows:>10} {seconds:>8.1f} {mb:>12.0f} {edit:>23.1f}", flush=True)
        if not args.keep:
            shutil.rmtree(root)
            csv_file.unlink()
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
