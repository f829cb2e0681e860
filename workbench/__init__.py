"""The workbench core: models, run store, checkpoints, jobs, the CLI entry and shared analyses.

Python API (the same operations as the CLI)::

    import workbench
    result = workbench.train("modular-addition", preset="tiny")
    run = workbench.load_run(result.run_id)
    model = run.model()            # a TransformerBridge, ready for run_with_cache

Names that live above the core (``train``, ``list_tasks``) resolve through the
``workbench.api`` entry points, so this package never imports the layers that build on it.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from workbench.errors import UserError
from workbench.models import ModelConfig, build_native, load_hf_bridge, to_bridge, wrap_nnsight
from workbench.runs import RunHandle, delete_run, list_runs, load_run
from workbench.store import RunStore

__all__ = ["ModelConfig", "RunHandle", "RunStore", "UserError", "build_native", "delete_run",
           "list_runs", "load_hf_bridge", "load_run", "to_bridge", "wrap_nnsight", "train",
           "list_tasks"]


def __getattr__(name: str):
    for ep in entry_points(group="workbench.api"):
        if ep.name == name:
            return ep.load()
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
