"""The package's shape: imports point one way, SQL and sqlite3 stay in store/, only cli/ prints,
and every module imports on its own (no import cycle hidden by import order)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"

# Higher may import lower; equal ranks are peers and may not import each other.
RANKS = {"cli": 5, "web": 4, "deliver": 3, "compose": 2, "audience": 2, "store": 1, "base": 0}
LONGEST = 275  # "modules near 250 lines or under"


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() and parts[1] in RANKS:
        return parts[1]
    return "base"


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every newsletter module a file imports, at the top or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "newsletter":
                found += [(node.lineno, f"newsletter.{a.name}") for a in node.names]
            elif node.module.startswith("newsletter."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("newsletter")]
    return found


def test_imports_point_down_the_layers() -> None:
    upward = []
    for name, path in modules():
        if name == "newsletter.__main__":
            continue  # the entry point: it calls cli.main and is imported by nothing
        here = layer(name)
        for line, target in imported(ast.parse(path.read_text(encoding="utf-8"))):
            there = layer(target)
            if there != here and RANKS[there] >= RANKS[here]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} -> {target}")
    assert upward == []


def test_only_the_store_imports_sqlite3_or_writes_sql() -> None:
    keywords = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE", "PRAGMA ")
    outside = []
    for name, path in modules():
        if layer(name) == "store":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                if any(n.split(".")[0] in ("sqlite3", "psycopg") for n in names):
                    outside.append(f"{path.name}:{node.lineno}: imports {names[0]}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and any(k in node.value for k in keywords) and node.value.isascii():
                outside.append(f"{path.name}:{node.lineno}: SQL {node.value[:40]!r}")
    assert outside == []


def test_only_the_cli_prints() -> None:
    printing = []
    for name, path in modules():
        if layer(name) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print":
                printing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert printing == []


def test_every_module_is_short() -> None:
    long = [f"{path.relative_to(PACKAGE.parent)}: {n} lines" for _, path in modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST]
    assert long == []


_IMPORT_EACH = """
import importlib, sys, traceback
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "newsletter" or m.startswith("newsletter.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failures))
"""


def test_every_module_imports_on_its_own() -> None:
    """Each module imported first, with no other module of the package loaded before it (the
    third-party libraries stay loaded, which is what keeps this quick): a cycle that only works
    in one import order fails here."""
    names = [name for name, _ in modules()]
    done = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
