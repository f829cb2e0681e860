"""Save a Transformer Program compiled to a standard transformer as a model run.

``workbench programs compile RUN`` turns a program run into a run of kind ``compiled``: an
ordinary in-house model that every analysis loads like a trained one (circuit discovery, the
model layer's ``TransformerBridge``), plus what makes it a ground-truth benchmark:

- ``checkpoints/step_00000000.safetensors``: the compiled weights, with the model config and the
  program's vocabularies in the metadata (the layout of a trained run's checkpoints);
- ``examples.safetensors``: the program run's train and test inputs ``x [N, n_ctx]`` and the
  program's own outputs ``y`` (``-100`` at BOS and padding), so circuit tasks explain what the
  model computes;
- ``ground_truth.json``: every edge of the compiled model's computation (``src``, ``dst``,
  ``port``, ``role``; see :mod:`programs.compile`).
"""

from __future__ import annotations

import torch

from programs.api import load_run
from programs.compile import compile_weights
from programs.data import IGNORE
from programs.discrete import run_discrete

from workbench.layout import GROUND_TRUTH_FORMAT

KIND = "compiled"


def compile_run(ref: str, *, name: str | None = None, store=None) -> dict:
    """Compile program run ``ref`` into a new ``compiled`` run; returns its summary."""
    from workbench.checkpoint import atomic_write_json, save_checkpoint
    from workbench.store import RunStore

    store = store or RunStore()
    loaded = load_run(ref, store)  # UserError for a missing or non-program run
    prog = loaded.program
    cfg, state, truth = compile_weights(prog)
    x = torch.cat([loaded.x_train, loaded.x_test])  # [N, n_ctx]
    y = run_discrete(prog, x).predictions.clone()  # [N, n_ctx]
    y[:, 0] = IGNORE
    if prog.shape.pad_id is not None:
        y[x == prog.shape.pad_id] = IGNORE
    vocab = {"input_vocab": list(prog.shape.input_vocab),
             "output_vocab": list(prog.shape.output_vocab)}
    run = store.create_run(kind=KIND, task=loaded.task, name=name,
                           config={"model": cfg.to_dict(), "task": loaded.task,
                                   "program_run": loaded.run_id})
    layout = store.layout(run.id)
    with store.lifecycle(run.id) as life:
        weights = layout.checkpoint(0)  # where a trained run keeps step 0
        save_checkpoint(weights, state, {"step": 0, "model": cfg.to_dict(), "vocab": vocab,
                                         "task": loaded.task})
        store.add_artifact(run.id, weights, "checkpoint", step=0)
        save_checkpoint(layout.examples, {"x": x, "y": y}, {"source": "program outputs"})
        store.add_artifact(run.id, layout.examples, "examples")
        edges = sorted(truth.edges, key=lambda e: (e.src, e.dst, e.port, e.role))
        atomic_write_json(layout.ground_truth, {
            "format": GROUND_TRUTH_FORMAT, "program_run": loaded.run_id,
            "edges": [e.__dict__ for e in edges],
            "heads": {k: list(v) for k, v in truth.heads.items()}})
        store.add_artifact(run.id, layout.ground_truth, "ground-truth")
        life.summary = {
            "run_id": run.id, "program_run": loaded.run_id, "task": loaded.task,
            "n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_heads": cfg.n_heads,
            "d_mlp": cfg.d_mlp,
            # distinct (writer, reader, port): one edge may hold several roles
            "ground_truth_edges": len({(e.src, e.dst, e.port) for e in edges}),
            "checkpoint": str(weights), "ground_truth": str(layout.ground_truth)}
    return life.summary
