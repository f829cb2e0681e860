"""Deterministic circuit extraction from trained mask parameters.

Method (Edge Pruning, Bhaskar et al. 2024; ``shared/reference/edge-pruning.md``): rank edges by
their deterministic score ``σ(log α/β·0.8)``; keep the edges above a threshold; drop every edge
whose writer cannot be reached from the embeddings or whose reader does not lead to the logits
(such edges cannot affect the output); choose the threshold by binary search so the sparsity
*after* that pruning is as close as possible to the target (by default the model's expected
sparsity ``1 − E[L0]/n``). With node masks (optional writer gates), edges out of writers
whose gate is off are excluded first.

Connectivity uses the node graph: a head is reached if any of its Q/K/V readers keeps an edge;
a K/V group reader feeds every query head of its group.
"""

from __future__ import annotations

import torch

from circuits.graph import Graph
from circuits.masks import deterministic_scores, expected_l0, expected_sparsity


def _feeders(graph: Graph) -> list[list[int]]:
    """For each writer, the readers whose inputs its computation uses."""
    spec = graph.spec
    group = spec.n_heads // spec.n_kv_heads
    index = {name: i for i, name in enumerate(graph.readers)}
    out: list[list[int]] = []
    for name in graph.writers:
        if name.endswith("_embed"):
            out.append([])
        elif name.startswith("m"):
            out.append([index[f"{name}.in"]])
        else:
            layer, head = name.split(".")
            g = int(head[1:]) // group
            out.append([index[f"{name}.q"], index[f"{layer}.g{g}.k"], index[f"{layer}.g{g}.v"]])
    return out


def prune_disconnected(graph: Graph, keep: torch.Tensor) -> torch.Tensor:
    """``keep`` ([n_edges] bool) minus the edges not on a path embeddings → logits."""
    n_r, n_w = len(graph.readers), len(graph.writers)
    dense = torch.zeros(n_r, n_w, dtype=torch.bool)
    rows, cols = graph.edge_index[:, 0], graph.edge_index[:, 1]
    dense[rows, cols] = keep
    feeders = _feeders(graph)
    fwd = torch.zeros(n_w, dtype=torch.bool)  # reachable from the embeddings
    for w in range(n_w):  # writers are in topological order
        fwd[w] = not feeders[w] or bool((dense[feeders[w]] & fwd).any())
    useful_reader = torch.zeros(n_r, dtype=torch.bool)  # its output reaches the logits
    useful_reader[graph.final_reader] = True
    bwd = torch.zeros(n_w, dtype=torch.bool)
    for w in reversed(range(n_w)):
        bwd[w] = bool((dense[:, w] & useful_reader).any())
        if bwd[w]:
            useful_reader[feeders[w]] = True
    # an edge lies on a full path iff its writer is reached from the embeddings and its reader
    # is the final read or feeds a writer that is both reached and leads to the logits
    reader_ok = torch.zeros(n_r, dtype=torch.bool)
    reader_ok[graph.final_reader] = True
    for w in range(n_w):
        if fwd[w] and bwd[w]:
            reader_ok[feeders[w]] = True
    return keep & fwd[cols] & reader_ok[rows]


def threshold_for_sparsity(graph: Graph, scores: torch.Tensor, target: float,
                           iters: int = 40, prune: bool = True,
                           allowed: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
    """Binary search of the score threshold whose kept set (after pruning disconnected edges)
    has sparsity closest to ``target``; returns ``(threshold, keep)``. ``allowed`` ([n_edges]
    bool) excludes edges whatever their score (the edges out of writers a node mask removed)."""
    target = float(min(max(target, 0.0), 1.0))
    n = scores.numel()

    def kept(th: float) -> torch.Tensor:
        keep = scores > th
        if allowed is not None:
            keep = keep & allowed
        return prune_disconnected(graph, keep) if prune else keep

    lo, hi = float(scores.min()) - 1e-6, float(scores.max())  # lo keeps all, hi keeps none
    best = (lo, kept(lo))
    best_err = abs((1 - best[1].float().sum().item() / n) - target)
    for _ in range(iters):
        mid = (lo + hi) / 2
        keep = kept(mid)
        sparsity = 1 - keep.float().sum().item() / n
        err = abs(sparsity - target)
        if err < best_err or (err == best_err and keep.sum() < best[1].sum()):
            best, best_err = (mid, keep), err
        if sparsity < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7:
            break
    return best


def extract_nodes(log_alpha: torch.Tensor) -> torch.Tensor:
    """Binary writer mask ``[n_writers]`` from node ``log_alpha``: on where the gate is expected
    to be on (``P(z > 0) > 1/2``)."""
    return expected_l0(log_alpha.detach().float().cpu()) > 0.5


def extract(graph: Graph, log_alpha: torch.Tensor, target: float | None = None,
            prune: bool = True, node_log_alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Binary edge mask ``[n_edges]`` from edge ``log_alpha`` at sparsity ``target``.

    With ``node_log_alpha`` (Edge Pruning's optional writer masks, trained jointly), a writer
    whose node gate is off keeps none of its outgoing edges (a masked writer emits its ablated
    output, exactly what cutting all its edges does), and the default target is the expected
    sparsity of edge and writer gates together, ``1 − Σ P(z_e>0)·P(z_w>0)/n``; without it, the
    expected sparsity of the edge gates.
    """
    la = log_alpha.detach().float().cpu()
    allowed = None
    if node_log_alpha is not None:
        writers = graph.edge_index[:, 1]
        allowed = extract_nodes(node_log_alpha)[writers]
        if target is None:
            p_node = expected_l0(node_log_alpha.detach().float().cpu())[writers]
            target = float(1 - (expected_l0(la) * p_node).mean())
    if target is None:
        target = float(expected_sparsity(la))
    scores = deterministic_scores(la)
    return threshold_for_sparsity(graph, scores, target, prune=prune, allowed=allowed)[1]
