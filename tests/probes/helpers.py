"""Shared builders for probe tests: in-memory activations with planted structure, and the
benchmark scripts the reference tests share their settings and code with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from probes.activations import Activations


def planted(n=600, d=16, n_classes=4, *, seed=0, signal=3.0, groups=None):
    """Two sites x two positions; the class is linearly planted in ``resid.1`` at position
    ``p1`` only (class means along random directions); everything else is noise. Tokens are
    unique per example (so a per-token control task cannot be memorised)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    means = torch.randn(n_classes, d, generator=gen) * signal / d ** 0.5 * 2
    acts = {s: torch.randn(n, 2, d, generator=gen) for s in ("resid.0", "resid.1")}
    acts["resid.1"][:, 1] += means[y]
    columns = [{"label": f"c{int(c)}", "group": (i // 3 if groups is None else groups[i])}
               for i, c in enumerate(y)]
    manifest = {"positions": ["p0", "p1"], "model": {"name": "m", "run_id": None, "step": None,
                                                     "config_hash": "x"},
                "sites": [{"name": s, "hook": s} for s in acts]}
    return Activations(directory=Path("memory"), manifest=manifest, acts=acts,
                       tokens=torch.arange(2 * n).reshape(n, 2), columns=columns)


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(filename: str):
    """``benchmarks/<filename>`` as a module (a script, not a package)."""
    spec = importlib.util.spec_from_file_location(Path(filename).stem + "_benchmark",
                                                  BENCHMARKS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
