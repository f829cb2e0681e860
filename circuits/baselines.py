"""Baselines on the same graph as Edge Pruning: edge attribution patching and greedy ACDC.

- EAP (Syed, Rager & Conmy, "Attribution Patching Outperforms Automated Circuit Discovery",
  2023): score(w → r) = (x̃_w − x_w)·∂L/∂(input of r), one forward and one backward. In our
  disentangled forward the reader input is ``resid + Σ (z − 1)(x_w − x̃_w)``, so that score is
  exactly ``−∂L/∂z_{r,w}`` at z = 1: we take the gradient with respect to the edge masks.
  (``transformer_lens.tools.analysis.attribution_patching`` computes EAP over its own typed
  node graph through bridge hooks; ours must score *this* graph — per-key/value-head K/V
  readers under GQA, separate token/position writers — so that EAP and Edge Pruning circuits
  are comparable edge for edge, and the mask gradient is cheaper than hooking every site.)
  KL(full ‖ circuit) has zero gradient at z = 1, so with the KL objective EAP scores the
  answer's negative log-probability; with ``logit-diff`` it scores the logit difference.
  Edges are ranked by |score|.
- ACDC (Conmy et al., "Towards Automated Circuit Discovery", NeurIPS 2023): visit readers from
  the logits backwards and each reader's incoming edges from the latest writer; remove an edge
  when KL(full ‖ circuit) rises by less than τ. One forward per edge: small models only. The
  KL increase observed when each edge was tried is returned as its score, so a circuit at a
  target sparsity can be read from the same ranking as the other methods.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from circuits.datasets import PairDataset
from circuits.evaluate import Ablation, dense_edges, kl_full_circuit, logit_diff
from circuits.masked_forward import MaskedModel
from workbench.errors import UserError

ACDC_MAX_EDGES = 20_000


def eap_scores(mm: MaskedModel, data: PairDataset, *, ablation: str = "corrupted",
               objective: str = "kl", batch_size: int = 32) -> torch.Tensor:
    """|EAP score| per edge ``[n_edges]`` (higher = more important)."""
    abl = Ablation(mm, data, ablation)
    total = torch.zeros(mm.graph.n_edges, dtype=torch.float64)
    for i in range(0, len(data), batch_size):
        b = data.subset(range(i, min(i + batch_size, len(data))))
        z = torch.ones(mm.graph.n_edges, dtype=mm.dtype, device=b.clean.device,
                       requires_grad=True)
        logits = mm(b.clean, b.positions, edges=dense_edges(mm, z), ablated=abl(b))
        if objective == "logit-diff":
            metric = -logit_diff(logits, b.answer, b.distractor).nansum()
        else:
            metric = F.cross_entropy(logits.float(), b.answer, reduction="sum")
        (grad,) = torch.autograd.grad(metric, z)
        total += (-grad).double().cpu()  # first-order change of the loss when z: 1 -> 0
    return (total / len(data)).abs().float()


@torch.no_grad()
def acdc(mm: MaskedModel, data: PairDataset, *, threshold: float = 0.01,
         ablation: str = "corrupted", max_examples: int = 64) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
    """Greedy ACDC: ``(keep [n_edges] bool, score [n_edges] KL increase when tried)``."""
    g = mm.graph
    if g.n_edges > ACDC_MAX_EDGES:
        raise UserError(f"ACDC needs one forward per edge; {g.n_edges} edges is too many "
                        f"(limit {ACDC_MAX_EDGES}); use eap or edge-pruning")
    if threshold < 0 or not math.isfinite(threshold):
        raise UserError(f"ACDC threshold must be a non-negative number, got {threshold!r}")
    b = data.subset(range(min(len(data), max_examples)))
    abl = Ablation(mm, b, ablation)(b)
    full = mm(b.clean, b.positions)
    keep = torch.ones(g.n_edges, dtype=torch.bool)
    score = torch.zeros(g.n_edges)
    ids = {(int(r), int(w)): i for i, (r, w) in enumerate(g.edge_index.tolist())}

    def kl_of(mask: torch.Tensor) -> float:
        circ = mm(b.clean, b.positions, edges=dense_edges(mm, mask.to(mm.dtype)), ablated=abl)
        return float(kl_full_circuit(full, circ))

    current = kl_of(keep)
    for r in reversed(range(len(g.readers))):
        for w in reversed(range(g.reader_upto(r))):
            e = ids[(r, w)]
            keep[e] = False
            new = kl_of(keep)
            score[e] = new - current
            if new - current < threshold:
                current = new
            else:
                keep[e] = True
    return keep, score
