"""``workbench fourier RUN [--checkpoint STEP|final|all] [--json]``: Fourier-feature analysis of a
stored modular-arithmetic run (Nanda et al. 2023 progress measures; see
:mod:`workbench.fourier.analysis`).

Run loading (:func:`load_fourier_run`) is kept apart from the analysis so the store wiring can
change without touching the measures. Results are cached in the store as
``("fourier", "step=<N>")`` and ``("fourier", "series")``; while ``all`` runs, the number of
checkpoints taken up so far is kept under ``("fourier", "progress")`` (what the browser page
shows).

The command dispatches on the run's task: modular addition, subtraction and multiplication
(discrete-log reindexing) here; ``sparse-parity`` (Walsh spectra, parity set, hidden progress)
and ``group-composition`` (irrep shares) through :mod:`workbench.fourier.task_runs`.
``workbench fourier numbers --model DIR|RUN`` (number-token spectra of any model, Hugging Face
directories included) goes to :mod:`workbench.fourier.number_cli`. The checkpoint counter lives in
:mod:`workbench.fourier.progress` and the pair split in :mod:`workbench.fourier.pair_split`, which
both paths use (``task_runs`` is imported here, so it must not import this module).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch

from workbench.errors import UserError
from workbench.fourier.analysis import analyze_modular_model, analyze_series
from workbench.fourier.pair_split import pair_train_mask
from workbench.fourier.progress import Progress

OPERATION_OF_TASK = {"modular-addition": "add", "modular-subtraction": "sub",
                     "modular-multiplication": "mul"}
SUPPORTED_OTHER = ["sparse-parity", "group-composition"]  # see workbench.fourier.task_runs


@dataclass
class FourierRun:
    """What the analysis needs from a stored run."""

    run_id: str
    p: int
    operation: str
    train_mask: torch.Tensor  # [p, p] bool
    n_heads: int
    act_fn: str
    steps: list[int]
    load_state: Callable[[int], dict[str, torch.Tensor]]
    metrics: dict[int, dict[str, float]]
    history: dict[str, list[tuple[int, float]]] | None = None
    save_result: Callable[[str, dict], None] | None = None
    task: str | None = None


def load_fourier_run(ref: str, handle=None) -> FourierRun:
    """Open run ``ref`` from the store (or use ``handle``) and describe it for the analysis."""
    from workbench.runs import load_run

    handle = handle if handle is not None else load_run(ref)
    config = handle.config
    task = config.get("task")
    if task not in OPERATION_OF_TASK:
        raise UserError(f"Fourier analysis needs a run of one of "
                        f"{', '.join(list(OPERATION_OF_TASK) + SUPPORTED_OTHER)}; "
                        f"run {handle.id} is {task!r}")
    if "p" not in handle.task_params:
        raise UserError(f"run {handle.id} stores no task parameter p")
    p = int(handle.task_params["p"])
    mask = pair_train_mask(*handle.split())  # [p, p]: the pairs the run trained on
    if mask.shape != (p, p):
        raise UserError(f"run {handle.id}: its split covers {mask.shape[0]} numbers, not p={p}")
    model = config.get("model") or {}
    steps = handle.checkpoints()
    if not steps:
        raise UserError(f"run {handle.id} has no checkpoints")
    metrics: dict[int, dict[str, float]] = {}
    history = handle.metrics()
    for name, rows in history.items():
        for step, value in rows:
            metrics.setdefault(int(step), {})[name] = value

    def load_state(step: int) -> dict[str, torch.Tensor]:
        return handle.state_dict(step)[0]

    def save_result(key: str, payload: dict) -> None:
        handle.store.put_result(handle.id, "fourier", key, payload)

    return FourierRun(run_id=handle.id, p=p, operation=OPERATION_OF_TASK[task], train_mask=mask,
                      n_heads=int(model.get("n_heads", 4)), act_fn=str(model.get("act_fn", "relu")),
                      steps=steps, load_state=load_state, metrics=metrics, history=history,
                      save_result=save_result, task=task)


class LazyState(Mapping):
    """A checkpoint's state dict, read on first use (so a series reports its progress)."""

    def __init__(self, load: Callable[[], dict[str, torch.Tensor]],
                 on_load: Callable[[], None] | None = None):
        self._load, self._on_load = load, on_load
        self._state: dict[str, torch.Tensor] | None = None
        self._lock = threading.Lock()

    def _get(self) -> dict[str, torch.Tensor]:
        with self._lock:
            if self._state is None:
                self._state = self._load()
                if self._on_load is not None:
                    self._on_load()
            return self._state

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def parse_checkpoint(value: str) -> str | int:
    if value in ("final", "all"):
        return value
    if value.isdigit():
        return int(value)
    raise UserError(f"--checkpoint must be a step number, 'final' or 'all', got {value!r}")


def analyze_run(run: FourierRun, which: str | int = "final") -> dict:
    """The JSON payload for one checkpoint (``which`` = step or "final") or all of them."""
    common = dict(n_heads=run.n_heads, act_fn=run.act_fn)
    if which == "all":
        progress = Progress(len(run.steps), run.save_result)
        states = [LazyState(lambda s=s: run.load_state(s), progress.tick) for s in run.steps]
        series = analyze_series([(s, st, run.metrics.get(s)) for s, st in zip(run.steps, states)],
                                run.p, run.train_mask, run.operation, history=run.history,
                                **common)
        payload = {"run": run.run_id, "task": run.task, "operation": run.operation, "p": run.p,
                   **series.to_json()}
        key = "series"
    else:
        step = run.steps[-1] if which == "final" else int(which)
        if step not in run.steps:
            raise UserError(f"run {run.run_id} has no checkpoint at step {step}; "
                            f"steps: {run.steps}")
        report = analyze_modular_model(run.load_state(step), run.p, run.train_mask,
                                       run.operation, step=step, **common)
        payload = {"run": run.run_id, "task": run.task, **report.to_json()}
        key = f"step={step}"
    if run.save_result is not None:
        run.save_result(key, payload)
    return payload


def _summary_line(r: dict) -> str:
    return (f"step {r['step']}: keys {r['key_frequencies']}, W_E key fraction "
            f"{r['embedding_key_fraction']:.3f}, neurons explained "
            f"{r['neurons_explained_fraction']:.3f}, logit fit r2 {r['logit_fit_r2']:.3f}, "
            f"loss full/restricted/excluded {r['full_loss']:.3g}/{r['restricted_loss']:.3g}/"
            f"{r['excluded_loss']:.3g}, gini E/L {r['gini_embedding']:.3f}/"
            f"{r['gini_unembedding']:.3f}, sum w^2 {r['sum_squared_weights']:.4g}")


def format_text(payload: dict) -> str:
    if "checkpoints" in payload:
        ph = payload["phases"]
        lines = [f"run {payload['run']}: key frequencies {payload['key_frequencies']}",
                 f"phases: memorisation ends {ph['memorisation_end']}, circuit formation ends "
                 f"{ph['circuit_formation_end']}, cleanup ends {ph['cleanup_end']}"]
        return "\n".join(lines + [_summary_line(r) for r in payload["checkpoints"]])
    return f"run {payload['run']} " + _summary_line(payload)


def _handle(args) -> int:
    from workbench.cli import emit

    from workbench.fourier import task_runs
    from workbench.runs import load_run

    if getattr(args, "model", None) is not None:
        if args.run != "numbers":
            raise UserError(f"--model goes with 'workbench fourier numbers', not with run "
                            f"{args.run!r}")
        from workbench.fourier.number_cli import handle_numbers

        return handle_numbers(args)
    if getattr(args, "n", None) is not None or getattr(args, "prefix", None) is not None \
            or getattr(args, "no_bos", False):
        raise UserError("--n, --prefix and --no-bos need --model DIR|RUN")
    which = parse_checkpoint(args.checkpoint)
    handle = load_run(args.run)
    task = handle.config.get("task")
    if task in task_runs.TASKS:
        payload = task_runs.analyze_task_run(handle, which)
        emit(payload, args.json, task_runs.format_text(payload))
        return 0
    payload = analyze_run(load_fourier_run(args.run, handle), which)
    emit(payload, args.json, format_text(payload))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fourier", help="Fourier-feature analysis of a run: modular arithmetic (grokking), "
                        "sparse parity (Walsh), group composition (irreps)")
    parser.add_argument("run", metavar="RUN",
                        help="run id or name; 'numbers' with --model for number-token spectra")
    parser.add_argument("--checkpoint", default="final", metavar="STEP|final|all",
                        help="which checkpoint to analyse (default: final); 'all' adds the "
                             "phase boundaries")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    from workbench.fourier.number_cli import add_arguments

    add_arguments(parser)
    parser.set_defaults(handler=_handle)


__all__ = ["FourierRun", "LazyState", "Progress", "analyze_run", "load_fourier_run",
           "pair_train_mask", "register"]
