"""Imports flow one way: ui → programs, circuits, probes → training → workbench; nothing
imports ui; programs, circuits and probes do not import each other; the ui capability
sub-packages (ui/runs, ui/fourier, ...) import only the ui shell, not each other; and no module
imports itself back through others (no import cycles, lazy imports inside functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
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
# ui modules that reach the capability sub-packages on purpose: the public re-export of the
# widgets (the app loads pages by module name, without an import statement)
UI_SHELL_REEXPORTS = {"ui/widgets.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _modules(root: Path, packages) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``packages`` under ``root``."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, packages) -> nx.DiGraph:
    """Module → imported module, over every import statement in ``packages`` (those inside
    functions too: a lazy import hides a cycle from Python, not from the design; imports under
    ``if TYPE_CHECKING:`` never run and are left out). ``from a import b`` points at module
    ``a.b`` when it exists, else at ``a``; relative imports are resolved; imports of anything
    outside ``packages`` are left out."""
    modules = _modules(root, packages)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            for target in filter(None, map(known, targets)):
                if target != name:
                    graph.add_edge(name, target)
    return graph


def import_cycles(root: Path, packages) -> list[list[str]]:
    """Every import cycle among the modules of ``packages`` (each a list of module names)."""
    return sorted(sorted(c) for c in nx.simple_cycles(import_graph(root, packages)))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_flow_one_way(package):
    forbidden = set(ALLOWED) - ALLOWED[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        hits = _imports(path) & forbidden
        if hits:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hits)}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    cycles = import_cycles(ROOT, ALLOWED)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_cycle_rule_fails_on_a_cycle(tmp_path):
    """The rule itself can fail: a tiny package whose modules import each other, one of them
    lazily and relatively (as workbench.fourier.cli and task_runs once did)."""
    pkg = tmp_path / "loop"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loop.sub.b import helper\n")
    (pkg / "sub" / "b.py").write_text("def helper():\n    from .. import a\n    return a\n")
    (pkg / "c.py").write_text("import loop.a\nimport json\n")
    assert import_cycles(tmp_path, ["loop"]) == [["loop.a", "loop.sub.b"]]
    # the same import for annotations only never runs: no cycle
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from .. import a\n")
    assert import_cycles(tmp_path, ["loop"]) == []
    assert set(import_graph(tmp_path, ["loop"]).edges) == {("loop.a", "loop.sub.b"),
                                                            ("loop.c", "loop.a")}


def _ui_capabilities() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "ui").glob("*/__init__.py"))


def test_ui_capabilities_import_only_the_shell():
    """A capability sub-package (ui/runs, ui/fourier, ...) uses the shell (ui/*.py) and the
    packages below ui, never another capability, so each can be read, moved or dropped alone."""
    capabilities = set(_ui_capabilities())
    assert {"runs", "fourier", "programs", "circuits"} <= capabilities

    def capability(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in capabilities else None

    bad = [f"{source} imports {target}" for source, target in import_graph(ROOT, ["ui"]).edges
           if capability(target) not in (None, capability(source))
           and not (capability(source) is None
                    and f"{source.replace('.', '/')}.py" in UI_SHELL_REEXPORTS)]
    assert not bad, "\n".join(bad)


def test_modules_stay_small():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for pkg in ALLOWED
           for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 450]
    assert not big, "\n".join(big)


def test_the_cli_and_its_commands_load_without_the_browser_stack():
    """A GPU machine or a slim install may lack Flask, Dash, Plotly and ipywidgets: every
    command still registers (serve imports them only when it serves)."""
    import subprocess
    import sys
    code = ("import sys; sys.modules.update(dict.fromkeys(['flask', 'dash', 'plotly', "
            "'ipywidgets', 'anywidget'])); from workbench.cli import build_parser; "
            "print(sorted(build_parser()._subparsers._group_actions[0].choices))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    commands = set(ast.literal_eval(proc.stdout))
    assert {"pretrain", "train", "probes", "circuits", "fourier", "serve"} <= commands
