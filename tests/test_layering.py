"""Imports flow one way: ui → programs, circuits, probes → training → workbench; nothing
imports ui; programs, circuits and probes do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "workbench": {"workbench"},
    "training": {"training", "workbench"},
    "programs": {"programs", "training", "workbench"},
    "circuits": {"circuits", "training", "workbench"},
    "probes": {"probes", "training", "workbench"},
    "ui": {"ui", "programs", "circuits", "probes", "training", "workbench"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_flow_one_way(package):
    forbidden = set(ALLOWED) - ALLOWED[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        hits = _imports(path) & forbidden
        if hits:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hits)}")
    assert not bad, "\n".join(bad)


def test_modules_stay_small():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for pkg in ALLOWED
           for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 450]
    assert not big, "\n".join(big)
