"""Only the core talks to the run store's database and lays out run directories: packages
above it use ``RunStore`` methods (queries, ``lifecycle``) and ``RunStore.layout`` paths."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("training", "programs", "circuits", "probes", "ui")
SQL_METHODS = {"execute", "executemany", "executescript"}
# Files whose owners convert them in their own issues (listed so the test stays able to fail
# for everything else); remove an entry once its file is converted.
PENDING: set[str] = set()


def problems(path: Path) -> list[str]:
    """SQL and hand-built run paths in one module, as ``line: what`` strings."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "sqlite3" for a in node.names):
            out.append(f"{node.lineno}: imports sqlite3")
        elif isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            out.append(f"{node.lineno}: imports sqlite3")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in SQL_METHODS):
            out.append(f"{node.lineno}: .{node.func.attr}(...) (SQL)")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left = node.left
            if (isinstance(left, ast.Call) and isinstance(left.func, ast.Attribute)
                    and left.func.attr == "run_dir"):
                out.append(f"{node.lineno}: run_dir(...) / ... (use RunStore.layout)")
    return out


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def test_no_sql_or_hand_built_run_paths_outside_the_core():
    bad = [f"{rel}:{p}" for rel, path in _modules() if rel not in PENDING
           for p in problems(path)]
    assert not bad, "\n".join(bad)


def test_pending_entries_are_still_needed():
    stale = [rel for rel in PENDING if not (ROOT / rel).is_file()
             or not problems(ROOT / rel)]
    assert not stale, f"converted, drop from PENDING: {stale}"


@pytest.mark.parametrize("source, found", [
    ("import sqlite3\n", "imports sqlite3"),
    ("store.execute('SELECT 1')\n", "SQL"),
    ("p = store.run_dir(rid) / 'x.json'\n", "use RunStore.layout"),
    ("p = store.layout(rid).config\n", None),
])
def test_the_check_finds_what_it_should(tmp_path, source, found):
    path = tmp_path / "m.py"
    path.write_text(source)
    hits = problems(path)
    assert (found in hits[0]) if found else not hits
