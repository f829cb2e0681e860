"""The Python API behind the Fourier page and widget: the cached analysis, the job that computes
it, and per-checkpoint views of modular runs that are not in the cached JSON (one neuron's
activation over the ``(a, b)`` grid, the 2-D Fourier norm map of the logits). Sparse-parity
and group-composition runs go through the same job and cache; their payload
(:mod:`workbench.fourier.task_runs`) holds everything their views draw.

The analysis runs as ``workbench fourier RUN --checkpoint all --json`` through
:func:`workbench.jobs.start_job`. The job is not attached to the run's row in the jobs table
(that slot belongs to the training job the run page follows); its id is kept under
``("fourier", "job")`` in the results, so any process can find it again after a reload.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from workbench import jobs
from workbench.errors import UserError
from workbench.fourier.cli import OPERATION_OF_TASK
from workbench.fourier.collect import collect_modular
from workbench.fourier.logits import logit_fourier_norm_map
from workbench.fourier.multiplicative import cyclic_reindex
from workbench.fourier.task_runs import TASKS
from workbench.store import RunStore

KIND = "fourier"


def applies(run) -> bool:
    """Whether the Fourier page can analyse ``run``: a training run of modular arithmetic,
    sparse parity or group composition (every task ``workbench fourier RUN`` covers)."""
    return getattr(run, "kind", None) == "train" and (run.task in OPERATION_OF_TASK or
                                                      run.task in TASKS)


@dataclass(frozen=True)
class AnalysisState:
    """Where the analysis of a run stands: ``series`` (cached payload or None), whether it
    covers every current checkpoint, the job (if one was started) and its progress."""

    run_id: str
    series: dict | None
    stale: bool
    job: jobs.Job | None
    progress: dict | None

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done

    @property
    def fraction(self) -> float:
        p = self.progress or {}
        return p.get("done", 0) / p["total"] if p.get("total") else 0.0


def checkpoint_steps(store: RunStore, run_id: str) -> list[int]:
    return sorted(a.step for a in store.artifacts(run_id, "checkpoint") if a.step is not None)


def analysis_state(store: RunStore, run_id: str) -> AnalysisState:
    series = store.get_result(run_id, KIND, "series")
    ref = store.get_result(run_id, KIND, "job")
    job = None
    if ref and ref.get("job_id"):
        try:
            job = jobs.job_status(ref["job_id"], store=store)
        except UserError:
            job = None
    stale = False
    if series is not None:
        done = [c.get("step") for c in series.get("checkpoints", [])]
        stale = done != checkpoint_steps(store, run_id)
    progress = store.get_result(run_id, KIND, "progress") if job is not None else None
    return AnalysisState(run_id=run_id, series=series, stale=stale, job=job, progress=progress)


def start_analysis(store: RunStore, run_id: str, env: dict[str, str] | None = None) -> jobs.Job:
    """Start ``workbench fourier RUN --checkpoint all --json`` as a job (or return the running
    one)."""
    run = store.get_run(run_id)
    if not applies(run):
        raise UserError(f"run {run.id} ({run.task}) is not a training run of "
                        f"{', '.join(list(OPERATION_OF_TASK) + list(TASKS))}")
    if not checkpoint_steps(store, run.id):
        raise UserError(f"run {run.id} has no checkpoints yet")
    state = analysis_state(store, run.id)
    if state.running:
        return state.job
    store.put_result(run.id, KIND, "progress", {"done": 0, "total": 0})
    job = jobs.start_job([KIND, run.id, "--checkpoint", "all", "--json"], store=store, env=env)
    store.put_result(run.id, KIND, "job", {"job_id": job.id})
    return job


def checkpoint_report(series: dict, step: int | None = None) -> dict:
    """The report of checkpoint ``step`` in a series payload (the last when None or absent)."""
    reports = series.get("checkpoints") or []
    if not reports:
        raise UserError("the analysis holds no checkpoints")
    if step is not None:
        for r in reports:
            if r.get("step") == step:
                return r
    return reports[-1]


@dataclass(frozen=True)
class CheckpointViews:
    """Activations of one checkpoint for the heatmaps (original token order on both axes)."""

    p: int
    n: int  # the cyclic group the maps are drawn in (p, or p - 1 for multiplication)
    operation: str
    neurons: torch.Tensor  # [p, p, d_mlp]
    logit_map: torch.Tensor  # [n, n] 2-D Fourier norm map (reindexed grid)

    def neuron(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.neurons.shape[-1]:
            raise UserError(f"neuron must be in 0..{self.neurons.shape[-1] - 1}, got {index}")
        return self.neurons[..., index]


_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def checkpoint_views(store: RunStore, run_id: str, step: int) -> CheckpointViews:
    """Neuron activations and the logit Fourier map of checkpoint ``step`` (kept for the last
    few checkpoints asked for, so scrubbing neurons is instant)."""
    key = (str(store.db_path), run_id, int(step))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    from workbench.runs import load_run

    handle = load_run(run_id, store)
    config = handle.config
    operation = OPERATION_OF_TASK.get(config.get("task"))
    if operation is None:
        raise UserError(f"run {run_id} is not a modular-arithmetic run")
    if "p" not in handle.task_params:
        raise UserError(f"run {run_id} stores no task parameter p")
    p = int(handle.task_params["p"])
    model = config.get("model") or {}
    state, _ = handle.state_dict(int(step))
    acts = collect_modular(state, p, n_heads=int(model.get("n_heads", 4)),
                           act_fn=str(model.get("act_fn", "relu")))
    re = cyclic_reindex(operation, p)
    views = CheckpointViews(p=p, n=re.n, operation=operation, neurons=acts.neurons,
                            logit_map=logit_fourier_norm_map(re.grid(acts.logits)[..., re.c_index]
                                                             .contiguous()))
    with _CACHE_LOCK:
        _CACHE[key] = views
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return views


__all__ = ["AnalysisState", "CheckpointViews", "analysis_state", "applies", "checkpoint_report",
           "checkpoint_steps", "checkpoint_views", "start_analysis"]
