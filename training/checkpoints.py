"""Checkpoint series and resume state of a training run.

Files (paths from :class:`workbench.layout.RunLayout`):
- ``checkpoint(step)``: model weights + metadata (model config, vocab, step): the series
  analyses read, one file per checkpoint step, kept forever.
- ``resume_state``: AdamW moments and step counters for the newest checkpoint, replaced
  atomically; resuming loads it together with that step's weights.
Order of writes: weights file, its artifact row, then the resume file. A kill between them
leaves the previous resume point intact; later rows/files are dropped on resume.
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.config import RunConfig
from training.distributed import full_tensor, shard_like
from workbench.checkpoint import load_checkpoint, save_checkpoint
from workbench.errors import UserError
from workbench.store import RunStore



def weights_path(store: RunStore, run_id: str, step: int) -> Path:
    return store.layout(run_id).checkpoint(step)


def save(store: RunStore, run_id: str, config: RunConfig, model: torch.nn.Module,
         optimizer: torch.optim.Optimizer, step: int, elapsed: float, data, *,
         write: bool = True) -> None:
    """Write the step's weights and the resume state. Sharded (FSDP) tensors are gathered
    first, a collective every rank joins; only the rank with ``write`` writes."""
    names = [n for n, _ in model.named_parameters()]
    weights = {k: full_tensor(v) for k, v in model.state_dict().items()}
    opt_tensors = optimizer_tensors(names, optimizer, to_cpu=False)
    if not write:
        return
    meta = {"step": step, "model": config.model.to_dict(), "vocab": data.vocab_json(),
            "task": config.task}
    path = weights_path(store, run_id, step)
    save_checkpoint(path, weights, meta)
    store.add_artifact(run_id, path, "checkpoint", step=step)
    save_checkpoint(store.layout(run_id).resume_state, opt_tensors,
                    {"step": step, "elapsed": elapsed, "params": names})


def restore(store: RunStore, run_id: str, model: torch.nn.Module,
            optimizer: torch.optim.Optimizer, *, prune: bool = True) -> tuple[int, float]:
    """Load the newest resume point into ``model``/``optimizer``; returns (step, elapsed).

    With ``prune`` (the writing rank), checkpoints written after that point are dropped.
    """
    resume_file = store.layout(run_id).resume_state
    if not resume_file.is_file():
        return 0, 0.0
    opt_tensors, meta = load_checkpoint(resume_file)
    step = int(meta["step"])
    weights, _ = load_checkpoint(weights_path(store, run_id, step))
    current = model.state_dict()
    model.load_state_dict({k: shard_like(v, current[k]) for k, v in weights.items()})
    load_optimizer_tensors(model, optimizer, opt_tensors, meta["params"])
    if not prune:
        return step, float(meta.get("elapsed", 0.0))
    # Checkpoints written after the resume point (killed before its resume file) are dropped.
    for art in store.artifacts(run_id, "checkpoint"):
        if art.step is not None and art.step > step:
            store.remove_artifact(run_id, art.path)
    for file_step, f in store.layout(run_id).checkpoint_files().items():
        if file_step > step:
            f.unlink()
    return step, float(meta.get("elapsed", 0.0))


def checkpoint_steps_of(store: RunStore, run_id: str) -> list[int]:
    return sorted(a.step for a in store.artifacts(run_id, "checkpoint") if a.step is not None)


def _params(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def optimizer_tensors(names: list[str], optimizer: torch.optim.Optimizer, *,
                      to_cpu: bool) -> dict[str, torch.Tensor]:
    """AdamW state as whole tensors keyed ``"<param name>::<state key>"`` (``names`` in
    parameter order); sharded state is gathered, a collective every rank joins. ``to_cpu``
    copies each tensor to host memory as it is gathered."""
    out: dict[str, torch.Tensor] = {}
    for name, param in zip(names, _params(optimizer)):
        for key, value in optimizer.state.get(param, {}).items():
            whole = full_tensor(torch.as_tensor(value))
            out[f"{name}::{key}"] = whole.detach().cpu().clone() if to_cpu else whole.clone()
    return out


def load_optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                           tensors: dict[str, torch.Tensor], saved_names: list[str]) -> None:
    """Put :func:`optimizer_tensors`' output back into ``optimizer`` (sharded like its
    parameters); the saved parameter names must be the model's."""
    names = [n for n, _ in model.named_parameters()]
    if names != saved_names:
        raise UserError("the run's resume state does not match its model")
    for name, param in zip(names, _params(optimizer)):
        state = {}
        for key in ("step", "exp_avg", "exp_avg_sq"):
            full = f"{name}::{key}"
            if full in tensors:
                value = tensors[full]
                state[key] = value.to(param.device) if key == "step" else shard_like(value,
                                                                                    param)
        if state:
            optimizer.state[param] = state
