"""Interactive exploration of stored circuit runs: re-extraction at another sparsity from the
stored mask parameters, a node's edges, and the effect of ablating a node.

These are the functions the browser page and the notebook widgets call (they never touch
tensors themselves).

- Edge scores of mask-trained circuits are the mask parameters log α (their deterministic
  scores σ(log α/β·0.8) saturate at 1 for every kept edge, so they cannot rank them).
- Re-extraction (Edge Pruning, Bhaskar et al. 2024; ``shared/reference/edge-pruning.md``): the
  run's ``log α`` (``circuit.masks.safetensors``) is thresholded again with
  :func:`circuits.extract.extract` at the requested sparsity — no retraining. Runs without
  masks (EAP, ACDC) can only be shown at the sparsity they were extracted at.
- Node ablation: every edge leaving a writer node (or entering a reader node) carries the
  ablated activation (the run's ablation: corrupted, zero or mean), evaluated with discrete
  masks (:func:`circuits.evaluate.evaluate_circuit`) both in the full model and in the circuit.
  The difference of KL(full ‖ ·) with and without the node is the node's effect.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from circuits.graph import Graph
from circuits.io import Circuit, from_mask, load_circuit
from workbench.errors import UserError
from workbench.store import RunStore


@dataclass
class StoredCircuit:
    """A ``circuits`` run's circuit, with its mask parameters when the method trained masks."""

    run_id: str
    circuit: Circuit
    log_alpha: torch.Tensor | None  # [n_edges]
    status: str

    @property
    def can_reextract(self) -> bool:
        return self.log_alpha is not None

    @property
    def graph(self) -> Graph:
        return self.circuit.graph


def circuit_runs(store: RunStore, model: str | None = None) -> list:
    """Completed ``circuits`` runs (newest first), optionally only those on run ``model``."""
    runs = [r for r in store.list_runs(kind="circuits") if r.status == "completed"]
    if model is not None:
        runs = [r for r in runs if (r.config or {}).get("model") == model]
    return runs


def _artifact(store: RunStore, run_id: str, kind: str) -> Path | None:
    summary = store.get_run(run_id).summary or {}
    path = (summary.get("paths") or {}).get(kind)
    if path and Path(path).is_file():
        return Path(path)
    default = store.layout(run_id).circuit(kind)
    return default if default.is_file() else None


def load_stored(ref: str, store: RunStore | None = None) -> StoredCircuit:
    """The circuit of run ``ref`` (id or name); ``UserError`` if it is not a finished search."""
    store = store or RunStore()
    run = store.get_run(ref)
    if run.kind != "circuits":
        raise UserError(f"run {ref!r} is a {run.kind} run, not a circuits run")
    path = _artifact(store, run.id, "json")
    if path is None:
        raise UserError(f"circuits run {ref!r} has no circuit yet (status {run.status})")
    circuit = load_circuit(path)
    log_alpha = None
    masks = _artifact(store, run.id, "masks")
    if masks is not None:
        from safetensors.torch import load_file
        log_alpha = load_file(str(masks))["log_alpha"]
        if log_alpha.numel() != circuit.graph.n_edges:
            raise UserError(f"mask file of run {ref!r} has {log_alpha.numel()} entries for "
                            f"{circuit.graph.n_edges} edges")
    if log_alpha is not None:  # σ(log α) saturates at 1 for kept edges; log α still ranks them
        names = circuit.graph.edge_names()
        kept = set(circuit.edges)
        circuit.scores = {n: float(v) for n, v in zip(names, log_alpha.tolist()) if n in kept}
    return StoredCircuit(run.id, circuit, log_alpha, run.status)


def reextract(stored: StoredCircuit, sparsity: float | None = None) -> Circuit:
    """The circuit at ``sparsity`` (None: as stored) from the stored mask parameters."""
    if sparsity is None:
        return stored.circuit
    if not isinstance(sparsity, (int, float)) or not 0 <= sparsity <= 1:
        raise UserError(f"sparsity must be in [0, 1], got {sparsity!r}")
    if stored.log_alpha is None:
        raise UserError(f"run {stored.run_id} has no mask parameters (method "
                        f"{stored.circuit.meta.get('method')}); it cannot be re-extracted")
    from circuits.extract import threshold_for_sparsity
    g = stored.graph
    # Rank by log α itself: the same order as the deterministic scores σ(log α/β·0.8), which
    # saturate to exactly 0 or 1 in float32 after training and would tie many edges.
    # writers a node mask removed keep no edges at any sparsity, as when the search extracted
    allowed = None
    removed = set(stored.circuit.meta.get("nodes_removed") or ())
    if removed:  # a writer mask indexed by each edge's writer, as circuits.extract does
        allowed = torch.tensor([w not in removed for w in g.writers])[g.edge_index[:, 1]]
    keep = threshold_for_sparsity(g, stored.log_alpha.detach().double(), float(sparsity),
                                  allowed=allowed)[1]
    meta = {**stored.circuit.meta, "extracted_sparsity": float(sparsity)}
    return from_mask(g, keep, stored.log_alpha, {}, meta)  # scores: log α (see load_stored)


def node_edges(circuit: Circuit, node: str) -> tuple[list[str], list[str]]:
    """(incoming, outgoing) circuit edges of a node.

    ``node`` is a writer (``a0.h1``, ``m0``, ``tok_embed``), a reader (``a1.h0.q``,
    ``a1.g0.k``, ``m0.in``, ``logits``) or a head (its incoming edges are those of its Q and
    its K/V group readers)."""
    spec = circuit.spec
    group = spec.n_heads // spec.n_kv_heads
    sinks = {node}
    if node.startswith("a") and node.count(".") == 1 and ".h" in node:  # a head: its readers
        layer, head = node.split(".")
        g = int(head[1:]) // group
        sinks |= {f"{node}.q", f"{layer}.g{g}.k", f"{layer}.g{g}.v"}
    elif node.startswith("m") and "." not in node:
        sinks.add(f"{node}.in")
    incoming, outgoing = [], []
    for name in sorted(circuit.edges):
        w, r = name.split("->")
        if r in sinks:
            incoming.append(name)
        if w == node:
            outgoing.append(name)
    return incoming, outgoing


@dataclass(frozen=True)
class NodeAblation:
    node: str
    n_examples: int
    full_kl: float  # KL(full ‖ full model with the node ablated)
    full_accuracy: float  # accuracy of the full model
    full_ablated_accuracy: float
    circuit_kl: float  # KL(full ‖ circuit)
    circuit_ablated_kl: float  # KL(full ‖ circuit with the node ablated)
    circuit_accuracy: float
    circuit_ablated_accuracy: float
    edges_removed: int  # circuit edges the ablation cuts

    def to_json(self) -> dict:
        return asdict(self)


_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()


def _model_and_data(store: RunStore, model: str, task: str, n: int, seed: int):
    """(MaskedModel, data) for a circuit's model and task, cached (pages call this per click)."""
    key = (str(store.home), model, task, n, seed)
    with _CACHE_LOCK:
        if key not in _CACHE:
            from circuits.datasets import make_pairs
            from circuits.masked_forward import MaskedModel
            from circuits.target import load_target
            target = load_target(model, store)
            data = make_pairs(task, target, n, seed)
            if len(_CACHE) >= 4:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = (MaskedModel(target.bridge).eval(), data.to(target.bridge.W_E.device))
        return _CACHE[key]


def _node_cut(graph: Graph, node: str) -> torch.Tensor:
    """[n_edges] bool: the edges that carry ``node``'s contribution (out of a writer; into a
    reader, or into all readers of a head)."""
    names = graph.edge_names()
    spec = graph.spec
    if node in graph.writers:
        return torch.tensor([n.split("->")[0] == node for n in names])
    sinks = {node}
    if node.count(".") == 1 and node.startswith("a") and ".h" in node:
        layer, head = node.split(".")
        g = int(head[1:]) // (spec.n_heads // spec.n_kv_heads)
        sinks = {f"{node}.q", f"{layer}.g{g}.k", f"{layer}.g{g}.v"}
    if not sinks & set(graph.readers):
        raise UserError(f"no node {node!r} in this model's graph")
    return torch.tensor([n.split("->")[1] in sinks for n in names])


def ablate_node(stored: StoredCircuit | str, node: str, *, circuit: Circuit | None = None,
                store: RunStore | None = None, n_examples: int = 64,
                seed: int = 0) -> NodeAblation:
    """Effect of ablating ``node`` in the full model and in ``circuit`` (default: the stored
    circuit) on the run's model and task, with the run's ablation."""
    store = store or RunStore()
    if isinstance(stored, str):
        stored = load_stored(stored, store)
    circuit = circuit or stored.circuit
    meta = stored.circuit.meta
    model, task = meta.get("model"), meta.get("task")
    if not model or not task:
        raise UserError(f"run {stored.run_id} does not record its model and task")
    from circuits.evaluate import evaluate_circuit
    mm, data = _model_and_data(store, model, task, n_examples, seed)
    g = mm.graph
    if g.spec != circuit.spec:
        raise UserError(f"model {model!r} no longer matches the circuit's graph")
    cut = _node_cut(g, node)
    keep = circuit.keep_mask()
    ablation = meta.get("ablation", "corrupted")
    full_cut = evaluate_circuit(mm, data, ~cut, ablation=ablation)
    circ = evaluate_circuit(mm, data, keep, ablation=ablation)
    circ_cut = evaluate_circuit(mm, data, keep & ~cut, ablation=ablation)
    return NodeAblation(node=node, n_examples=len(data), full_kl=full_cut.kl,
                        full_accuracy=full_cut.full_accuracy,
                        full_ablated_accuracy=full_cut.accuracy, circuit_kl=circ.kl,
                        circuit_ablated_kl=circ_cut.kl, circuit_accuracy=circ.accuracy,
                        circuit_ablated_accuracy=circ_cut.accuracy,
                        edges_removed=int((keep & cut).sum()))
