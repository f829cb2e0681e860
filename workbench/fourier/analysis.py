"""Fourier analysis of a 1-layer modular-arithmetic transformer: one checkpoint or a series.

Method and reference: Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability" (key frequencies, Fourier norms of W_E and W_L, neuron frequencies, the logit
fit, restricted and excluded losses, Gini and weight norm), with subtraction and multiplication
reindexed as addition in a cyclic group (:mod:`workbench.fourier.multiplicative`). This module
only wires :mod:`~workbench.fourier.collect` (activations) to the pure measures.

Loss conventions: ``train_loss``/``test_loss``/accuracies are over the task's own split of all
``p^2`` pairs. ``full_loss`` and ``restricted_loss`` are over every pair of the analysed grid and
``excluded_loss`` (with ``excluded_baseline_loss``, the unmodified loss on the same inputs) over
its training pairs; the analysed grid is all pairs for add/sub and the ``(p - 1)^2`` nonzero
pairs for mul (0 has no discrete logarithm).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import torch

from workbench.errors import UserError
from workbench.fourier.collect import collect_modular, modular_weights
from workbench.fourier.logits import logit_measures
from workbench.fourier.measures import (detect_key_frequencies, embedding_fourier_norms,
                                        fourier_gini, key_fraction,
                                        key_frequencies_from_neurons, sum_squared_weights,
                                        unembedding_fourier_norms)
from workbench.fourier.multiplicative import cyclic_reindex, labels_table
from workbench.fourier.neurons import neuron_frequencies
from workbench.fourier.phases import PhaseBoundaries, detect_phases


@dataclass(frozen=True, kw_only=True)
class FourierReport:
    """Fourier measures of one checkpoint (JSON-ready via :meth:`to_json`)."""

    step: int | None
    p: int
    operation: str
    n: int  # size of the cyclic group the operation is analysed in (p, or p - 1 for mul)
    key_frequencies: list[int]
    checkpoint_key_frequencies: list[int]  # detected on this checkpoint alone
    neuron_cluster_frequencies: list[int]
    embedding_fourier_norms: list[float]  # index k = frequency k, 0 = constant
    unembedding_fourier_norms: list[float]
    embedding_key_fraction: float
    unembedding_key_fraction: float
    neuron_frequencies: list[dict]
    neurons_explained_fraction: float
    logit_fit_r2: float
    logit_fit_alphas: dict[int, float]
    full_loss: float
    restricted_loss: float
    excluded_loss: float
    excluded_baseline_loss: float
    train_loss: float
    test_loss: float
    train_accuracy: float
    test_accuracy: float
    gini_embedding: float
    gini_unembedding: float
    sum_squared_weights: float

    def to_json(self) -> dict:
        out = asdict(self)
        out["logit_fit_alphas"] = {str(k): v for k, v in self.logit_fit_alphas.items()}
        return out


@dataclass(frozen=True)
class SeriesReport:
    """Reports for every checkpoint (sorted by step) and the detected phase boundaries."""

    reports: list[FourierReport]
    phases: PhaseBoundaries
    key_frequencies: list[int]
    metrics: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"key_frequencies": self.key_frequencies, "phases": self.phases.to_json(),
                "checkpoints": [r.to_json() for r in self.reports]}


def _train_mask(mask: torch.Tensor, p: int) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.shape != (p, p):
        raise UserError(f"train_pairs_mask must be [{p}, {p}], got {tuple(mask.shape)}")
    return mask.bool()


def weight_fourier_norms(state: Mapping[str, torch.Tensor], p: int,
                         operation: str = "add") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frequency norms of W_E (token axis) and W_L (class axis) over the reindexed Z_n."""
    re = cyclic_reindex(operation, p)
    weights = modular_weights(state)
    if weights.w_u.shape[1] != p:
        raise UserError(f"the model predicts {weights.w_u.shape[1]} classes; p={p} needs {p}")
    return (embedding_fourier_norms(weights.w_e[re.a_index]),  # [n // 2 + 1]
            unembedding_fourier_norms(weights.w_l[:, re.c_index]))


def analyze_modular_model(state: Mapping[str, torch.Tensor], p: int,
                          train_pairs_mask: torch.Tensor, operation: str = "add", *,
                          n_heads: int = 4, act_fn: str = "relu",
                          key_frequencies: Sequence[int] | None = None,
                          step: int | None = None) -> FourierReport:
    """All Fourier measures of one checkpoint of the 1-layer modular model.

    ``state``: the native state dict (see :mod:`workbench.fourier.collect`); ``train_pairs_mask``
    ``[p, p]`` marks training pairs ``(a, b)``; ``key_frequencies`` overrides detection (a
    series uses the final checkpoint's, so progress measures are comparable across steps).
    """
    re = cyclic_reindex(operation, p)
    mask = _train_mask(train_pairs_mask, p)
    norms_e, norms_l = weight_fourier_norms(state, p, operation)
    own_keys = detect_key_frequencies(norms_e, norms_l)
    acts = collect_modular(state, p, n_heads=n_heads, act_fn=act_fn)
    labels = labels_table(operation, p)  # [p, p]
    keys = sorted(own_keys if key_frequencies is None else {int(k) for k in key_frequencies})

    neurons = neuron_frequencies(re.grid(acts.neurons))
    logits = acts.logits.double()  # [p, p, p] losses of a grokked model are ~1e-7: float64
    grid_logits = re.grid(logits)  # [n, n, p]
    fit, losses = logit_measures(grid_logits, re.grid(labels), re.grid(mask), keys,
                                 fit_classes=None if re.operation != "mul" else re.c_index)
    nll = -logits.log_softmax(dim=-1).gather(-1, labels[..., None])[..., 0]  # [p, p]
    correct = logits.argmax(dim=-1) == labels  # [p, p]

    return FourierReport(
        step=step, p=p, operation=operation, n=re.n, key_frequencies=list(keys),
        checkpoint_key_frequencies=own_keys,
        neuron_cluster_frequencies=key_frequencies_from_neurons(neurons.frequency,
                                                                neurons.explained),
        embedding_fourier_norms=norms_e.tolist(), unembedding_fourier_norms=norms_l.tolist(),
        embedding_key_fraction=key_fraction(norms_e, keys),
        unembedding_key_fraction=key_fraction(norms_l, keys),
        neuron_frequencies=neurons.to_json(),
        neurons_explained_fraction=neurons.explained_share,
        logit_fit_r2=fit.r2, logit_fit_alphas=fit.alphas,
        full_loss=losses.full_loss, restricted_loss=losses.restricted_loss,
        excluded_loss=losses.excluded_loss, excluded_baseline_loss=losses.train_loss,
        train_loss=float(nll[mask].mean()) if mask.any() else float("nan"),
        test_loss=float(nll[~mask].mean()) if (~mask).any() else float("nan"),
        train_accuracy=float(correct[mask].double().mean()) if mask.any() else float("nan"),
        test_accuracy=float(correct[~mask].double().mean()) if (~mask).any() else float("nan"),
        gini_embedding=fourier_gini(norms_e), gini_unembedding=fourier_gini(norms_l),
        sum_squared_weights=sum_squared_weights(state),
    )


_ALIASES = {"train_accuracy": ("train_accuracy", "train_acc"),
            "test_accuracy": ("test_accuracy", "test_acc"),
            "train_loss": ("train_loss",), "test_loss": ("test_loss",)}


def _series_value(metrics: Mapping | None, report: FourierReport, name: str) -> float:
    for alias in _ALIASES[name]:
        if metrics and alias in metrics:
            return float(metrics[alias])
    return float(getattr(report, name))


def analyze_series(checkpoints: Sequence[tuple[int, Mapping[str, torch.Tensor], Mapping | None]],
                   p: int, train_pairs_mask: torch.Tensor, operation: str = "add", *,
                   n_heads: int = 4, act_fn: str = "relu",
                   key_frequencies: Sequence[int] | None = None,
                   history: Mapping[str, Sequence[tuple[int, float]]] | None = None,
                   threads: int | None = 1, workers: int = 2) -> SeriesReport:
    """Reports for ``(step, state, metrics)`` checkpoints plus phase boundaries.

    Key frequencies are those of the last checkpoint (unless given) and are used for every
    checkpoint. Phase detection reads ``train/test_accuracy`` (or ``_acc``) and ``train/test_loss``
    from ``metrics`` when present, else the values computed here from the weights.

    ``history`` (metric name -> ``[(step, value)]``, e.g. the store's metric history) gives
    finer train/test curves than the checkpoints: when it holds a train and a test series the
    phase boundaries are read from it (the diagnostics still come from the checkpoints).

    Parallelism: ``workers`` checkpoints are analysed at once in Python threads (torch
    releases the GIL inside its kernels), each kernel on ``threads`` torch intra-op threads
    (the process-wide setting, restored afterwards; None leaves it alone). Whole checkpoints in
    parallel beat parallel kernels here because the tensors are small: on a shared 2-core
    machine, two intra-op threads took 4x the CPU time of one (100 checkpoints of the
    p = 113 model: 373 s vs 81 s wall under load).
    """
    kwargs = dict(n_heads=n_heads, act_fn=act_fn, key_frequencies=key_frequencies,
                  history=history, workers=max(1, int(workers)))
    if threads is None:
        return _analyze_series(checkpoints, p, train_pairs_mask, operation, **kwargs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _analyze_series(checkpoints, p, train_pairs_mask, operation, **kwargs)
    finally:
        torch.set_num_threads(before)


def _history_series(history: Mapping[str, Sequence[tuple[int, float]]] | None) -> dict | None:
    """Train/test curves on their own step grid from a metric history (None if incomplete)."""
    if not history:
        return None
    found = {}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            if history.get(alias):
                found[name] = {int(s): float(v) for s, v in history[alias]}
                break
    train = "train_accuracy" if "train_accuracy" in found else "train_loss"
    tests = [k for k in ("test_loss", "test_accuracy") if k in found]
    if train not in found or not tests:
        return None
    steps = sorted(set(found[train]).intersection(*(found[k] for k in tests)))
    if len(steps) < 4:
        return None
    return {"steps": steps, **{k: [found[k][s] for s in steps] for k in (train, *tests)}}


def _analyze_series(checkpoints, p, train_pairs_mask, operation, *, n_heads, act_fn,
                    key_frequencies, history=None, workers=1) -> SeriesReport:
    if not checkpoints:
        raise UserError("analyze_series needs at least one checkpoint")
    ordered = sorted(checkpoints, key=lambda c: c[0])
    steps = [int(c[0]) for c in ordered]
    if len(set(steps)) != len(steps):
        raise UserError(f"duplicate checkpoint steps in {steps}")
    if key_frequencies is None:
        key_frequencies = detect_key_frequencies(*weight_fourier_norms(ordered[-1][1], p,
                                                                       operation))
    key_frequencies = sorted(int(k) for k in key_frequencies)
    def one(checkpoint) -> FourierReport:
        step, state, _ = checkpoint
        return analyze_modular_model(state, p, train_pairs_mask, operation, n_heads=n_heads,
                                     act_fn=act_fn, key_frequencies=key_frequencies, step=step)

    if workers > 1 and len(ordered) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reports = list(pool.map(one, ordered))  # keeps the order
    else:
        reports = [one(c) for c in ordered]
    metrics = [dict(m or {}) for _, _, m in ordered]
    series = {name: [_series_value(m, r, name) for m, r in zip(metrics, reports)]
              for name in _ALIASES}
    phases = detect_phases(
        steps, **series, excluded_loss=[r.excluded_loss for r in reports],
        gini=[(r.gini_embedding + r.gini_unembedding) / 2 for r in reports],
        sum_squared_weights=[r.sum_squared_weights for r in reports])
    fine = _history_series(history)
    if fine is not None:
        coarse = phases
        phases = dataclasses.replace(detect_phases(**fine),
                                     excluded_loss_peak=coarse.excluded_loss_peak,
                                     gini_steepest_rise=coarse.gini_steepest_rise,
                                     weights_steepest_fall=coarse.weights_steepest_fall)
    return SeriesReport(reports=reports, phases=phases, key_frequencies=list(key_frequencies),
                        metrics=metrics)
