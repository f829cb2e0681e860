"""The checkpoint series and resume state of a pretraining run.

Layout under the run directory:
- ``checkpoints/step_00001000/``: a complete Hugging Face model directory (config.json,
  model.safetensors, tokenizer files, workbench.json), one per checkpoint step, kept for
  analyses; its ``model.safetensors`` is the run's ``checkpoint`` artifact for that step.
- ``resume.safetensors``: AdamW moments and step counters, the CPU (and CUDA) RNG states and
  the step / elapsed time of the newest checkpoint, replaced atomically.
The data position is the step itself (:mod:`training.lm.shards` samples statelessly). Writes go
checkpoint directory (renamed into place), its artifact row, then the resume file; a kill
between them leaves the previous resume point, and later directories are dropped on resume.
Tensors are always whole (FSDP shards are gathered), so a run resumes on any world size.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch

from training.checkpoints import load_optimizer_tensors, optimizer_tensors
from training.distributed import full_tensor, shard_like
from training.lm.hf_export import WEIGHTS, read_hf_dir, write_hf_dir
from workbench.checkpoint import load_checkpoint, save_checkpoint
from workbench.store import RunStore

_STEP_RE = re.compile(r"^step_(\d+)$")


def checkpoint_dir(store: RunStore, run_id: str, step: int) -> Path:
    return store.layout(run_id).model_dir(step)


def save(store: RunStore, run_id: str, model: torch.nn.Module, optimizer, step: int,
         elapsed: float, tokenizer, meta: dict, *, write: bool) -> None:
    """Checkpoint ``step``: gathers sharded tensors (a collective every rank joins); only the
    rank with ``write`` writes."""
    names = [n for n, _ in model.named_parameters()]
    state = {k: full_tensor(v).detach().cpu() for k, v in model.state_dict().items()}
    opt = optimizer_tensors(names, optimizer, to_cpu=True)
    if not write:
        return
    directory = write_hf_dir(checkpoint_dir(store, run_id, step), model.cfg, state, tokenizer,
                             {**meta, "step": step})
    store.add_artifact(run_id, directory / WEIGHTS, "checkpoint", step=step)
    opt["rng::cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        opt["rng::cuda"] = torch.cuda.get_rng_state()
    save_checkpoint(store.layout(run_id).resume_state, opt,
                    {"step": step, "elapsed": elapsed, "params": names})


def restore(store: RunStore, run_id: str, model: torch.nn.Module, optimizer, *,
            prune: bool) -> tuple[int, float]:
    """Load the newest resume point into ``model`` / ``optimizer`` (sharded like them) and
    restore the RNG; returns (step, elapsed). ``prune``: drop checkpoints after it."""
    resume_file = store.layout(run_id).resume_state
    if not resume_file.is_file():
        return 0, 0.0
    opt, meta = load_checkpoint(resume_file)
    step = int(meta["step"])
    _, weights, _ = read_hf_dir(checkpoint_dir(store, run_id, step))
    current = model.state_dict()
    model.load_state_dict({k: shard_like(weights[k], v) for k, v in current.items()})
    load_optimizer_tensors(model, optimizer, opt, meta["params"])
    torch.set_rng_state(opt["rng::cpu"])
    if "rng::cuda" in opt and torch.cuda.is_available():
        torch.cuda.set_rng_state(opt["rng::cuda"])
    if prune:
        for art in store.artifacts(run_id, "checkpoint"):
            if art.step is not None and art.step > step:
                store.remove_artifact(run_id, art.path)
        for d in store.layout(run_id).checkpoints.iterdir():
            m = _STEP_RE.match(d.name)
            if (m and int(m.group(1)) > step) or d.name.endswith(".tmp"):
                shutil.rmtree(d, ignore_errors=True)  # later, or half-written when killed
    return step, float(meta.get("elapsed", 0.0))
