"""Evaluating a circuit with discrete masks, and the ablation sources shared with the search.

Method (Edge Pruning, Bhaskar et al. 2024, §3): run the model with binary edge masks; pruned
edges carry the ablated writer output (corrupted run, zero, or the dataset mean per position).
Reported: KL(full ‖ circuit) at the answer positions, accuracy (argmax = answer), logit
difference answer − distractor (circuit and full model), exact match with the full model's
prediction, number of edges and sparsity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from circuits.datasets import PairDataset
from circuits.masked_forward import MaskedModel
from workbench.errors import UserError

ABLATIONS = ("corrupted", "zero", "mean")


class Ablation:
    """Ablated writer outputs for a batch: corrupted-run activations, zeros, or dataset means."""

    def __init__(self, mm: MaskedModel, data: PairDataset, kind: str, batch_size: int = 64):
        if kind not in ABLATIONS:
            raise UserError(f"ablation must be one of {', '.join(ABLATIONS)}, got {kind!r}")
        self.mm, self.kind = mm, kind
        self.mean = None
        if kind == "mean":
            total = None
            for i in range(0, len(data), batch_size):
                out = mm.writer_outputs(data.clean[i:i + batch_size]).sum(1, keepdim=True)
                total = out if total is None else total + out
            self.mean = total / len(data)  # [writers, 1, seq, d_model]

    def __call__(self, batch: PairDataset) -> torch.Tensor:
        if self.kind == "corrupted":
            return self.mm.writer_outputs(batch.corrupted)
        if self.kind == "mean":
            return self.mean[:, :, :batch.clean.shape[1]]
        return torch.zeros(len(self.mm.graph.writers), 1, 1, 1, dtype=self.mm.dtype,
                           device=batch.clean.device)


def dense_edges(mm: MaskedModel, values: torch.Tensor) -> torch.Tensor:
    """``[n_edges]`` mask values -> ``[n_readers, n_writers]`` (differentiable)."""
    g = mm.graph
    dense = torch.zeros(len(g.readers), len(g.writers), dtype=values.dtype,
                        device=values.device)
    idx = g.edge_index.to(values.device)
    return dense.index_put((idx[:, 0], idx[:, 1]), values)


def kl_full_circuit(full_logits: torch.Tensor, circuit_logits: torch.Tensor) -> torch.Tensor:
    """Mean over examples of KL(full ‖ circuit), from logits ``[batch, vocab]``."""
    p = F.log_softmax(full_logits.float(), -1)
    q = F.log_softmax(circuit_logits.float(), -1)
    return (p.exp() * (p - q)).sum(-1).mean()


def logit_diff(logits: torch.Tensor, answer: torch.Tensor, distractor: torch.Tensor):
    """Per-example answer − distractor logit (NaN where there is no distractor)."""
    idx = torch.arange(logits.shape[0], device=logits.device)
    a = logits[idx, answer].float()
    d = logits[idx, distractor.clamp(min=0)].float()
    return torch.where(distractor >= 0, a - d, torch.full_like(a, math.nan))


@dataclass(frozen=True)
class EvalResult:
    kl: float
    accuracy: float
    full_accuracy: float
    logit_diff: float
    full_logit_diff: float
    exact_match: float
    n_edges: int
    total_edges: int
    sparsity: float

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


@torch.no_grad()
def evaluate_circuit(mm: MaskedModel, data: PairDataset, keep: torch.Tensor, *,
                     ablation: str = "corrupted", nodes: torch.Tensor | None = None,
                     batch_size: int = 64) -> EvalResult:
    """Metrics of the circuit ``keep`` ([n_edges] bool) on ``data``."""
    abl = Ablation(mm, data, ablation, batch_size)
    edges = dense_edges(mm, keep.to(mm.dtype))
    node_vals = None if nodes is None else nodes.to(mm.dtype)
    n = len(data)
    sums = dict(kl=0.0, acc=0.0, facc=0.0, em=0.0)
    lds, flds = [], []
    for i in range(0, n, batch_size):
        b = data.subset(range(i, min(i + batch_size, n)))
        full = mm(b.clean, b.positions)
        circ = mm(b.clean, b.positions, edges=edges, nodes=node_vals, ablated=abl(b))
        k = len(b)
        sums["kl"] += float(kl_full_circuit(full, circ)) * k
        sums["acc"] += float((circ.argmax(-1) == b.answer).float().sum())
        sums["facc"] += float((full.argmax(-1) == b.answer).float().sum())
        sums["em"] += float((circ.argmax(-1) == full.argmax(-1)).float().sum())
        lds.append(logit_diff(circ, b.answer, b.distractor))
        flds.append(logit_diff(full, b.answer, b.distractor))
    ld, fld = torch.cat(lds), torch.cat(flds)
    n_edges, total = int(keep.sum()), keep.numel()
    return EvalResult(kl=sums["kl"] / n, accuracy=sums["acc"] / n, full_accuracy=sums["facc"] / n,
                      logit_diff=float(ld.nanmean()) if (~ld.isnan()).any() else math.nan,
                      full_logit_diff=float(fld.nanmean()) if (~fld.isnan()).any()
                      else math.nan,
                      exact_match=sums["em"] / n, n_edges=n_edges, total_edges=total,
                      sparsity=1 - n_edges / total)
