"""Circuit files: JSON (the workbench format, re-loadable), GraphML (networkx) and DOT.

A circuit JSON holds the graph spec, the kept edges (``writer->reader`` names) with their
scores, the metrics and the search settings; the mask parameters (log α) are stored next to it
as safetensors so a circuit can be re-extracted at another sparsity without retraining.
In GraphML/DOT the nodes are writers and readers; each reader is joined to the computation it
feeds (``a0.h1.q -> a0.h1``) by an ``internal`` edge so the drawing is connected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import torch

from circuits.graph import Graph, GraphSpec
from workbench.checkpoint import atomic_write_bytes, atomic_write_json
from workbench.errors import UserError
from workbench.files import read_mapping_file

FORMAT = "workbench-circuit/1"


@dataclass
class Circuit:
    spec: GraphSpec
    edges: list[str]  # kept edge names
    scores: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # model, task, method, settings

    @property
    def graph(self) -> Graph:
        return Graph(self.spec)

    def keep_mask(self) -> torch.Tensor:
        g = self.graph
        keep = torch.zeros(g.n_edges, dtype=torch.bool)
        for name in self.edges:
            try:
                keep[g.edge_id(name)] = True
            except KeyError:
                raise UserError(f"edge {name!r} does not exist in this model's graph") from None
        return keep

    def to_json(self) -> dict:
        g = self.graph
        return {"format": FORMAT, "spec": self.spec.__dict__, "edges": sorted(self.edges),
                "scores": self.scores, "n_edges": len(self.edges), "total_edges": g.n_edges,
                "sparsity": 1 - len(self.edges) / g.n_edges, "metrics": self.metrics,
                **{k: v for k, v in self.meta.items() if k not in ("edges", "spec")}}


def from_mask(graph: Graph, keep: torch.Tensor, scores: torch.Tensor | None = None,
              metrics: dict | None = None, meta: dict | None = None) -> Circuit:
    names = graph.edge_names()
    kept = [n for n, k in zip(names, keep.tolist()) if k]
    sc = {} if scores is None else {n: float(s) for n, s, k in
                                    zip(names, scores.tolist(), keep.tolist()) if k}
    return Circuit(graph.spec, kept, sc, metrics or {}, meta or {})


def load_circuit(path: str | Path) -> Circuit:
    path = Path(path)
    obj = read_mapping_file(path, "circuit file", fmt="json")
    if obj.get("format") != FORMAT:
        raise UserError(f"{path.name} is not a workbench circuit file (format {FORMAT})")
    meta = {k: v for k, v in obj.items() if k not in ("format", "spec", "edges", "scores",
                                                      "metrics", "n_edges", "total_edges",
                                                      "sparsity")}
    return Circuit(GraphSpec(**obj["spec"]), list(obj["edges"]), obj.get("scores", {}),
                   obj.get("metrics", {}), meta)


def to_networkx(circuit: Circuit) -> nx.DiGraph:
    g = nx.DiGraph()

    def add(node: str, role: str):
        layer = -1 if node.endswith("_embed") else (10**6 if node == "logits"
                                                    else int(node[1:].split(".")[0]))
        kind = ("embedding" if node.endswith("_embed") else "logits" if node == "logits"
                else "mlp" if node.startswith("m") else "attention")
        g.add_node(node, role=role, layer=layer, kind=kind)

    for name in circuit.edges:
        w, r = name.split("->")
        add(w, "writer")
        add(r, "reader")
        g.add_edge(w, r, kind="circuit", score=circuit.scores.get(name, 1.0))
    spec = circuit.spec
    group = spec.n_heads // spec.n_kv_heads
    for node in list(g.nodes):
        if g.nodes[node]["role"] != "reader" or node == "logits":
            continue
        if ".g" in node:  # K/V group reader feeds the query heads of its group
            layer, grp, _ = node.split(".")
            targets = [f"{layer}.h{h}" for h in range(int(grp[1:]) * group,
                                                       (int(grp[1:]) + 1) * group)]
        else:
            targets = [Graph.reader_node(node)]
        for t in targets:
            if t in g:
                g.add_edge(node, t, kind="internal", score=1.0)
    return g


def write_dot(circuit: Circuit, path: str | Path) -> None:
    g = to_networkx(circuit)
    colours = {"embedding": "lightgrey", "attention": "lightblue", "mlp": "lightsalmon",
               "logits": "palegreen"}
    lines = ["digraph circuit {", "  rankdir=BT;", "  node [style=filled, shape=box];"]
    for node, data in g.nodes(data=True):
        shape = ", shape=ellipse" if data["role"] == "reader" and node != "logits" else ""
        lines.append(f'  "{node}" [fillcolor={colours[data["kind"]]}{shape}];')
    for u, v, data in g.edges(data=True):
        style = ", style=dashed" if data["kind"] == "internal" else \
            f', penwidth={1 + 2 * min(max(data["score"], 0.0), 1.0):.2f}'
        lines.append(f'  "{u}" -> "{v}" [kind={data["kind"]}{style}];')
    lines.append("}")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def write_circuit(circuit: Circuit, directory: str | Path, stem: str = "circuit",
                  log_alpha: torch.Tensor | None = None) -> dict[str, str]:
    """Write ``stem.json``, ``stem.graphml``, ``stem.dot`` (and ``stem.masks.safetensors``);
    returns ``{"json": path, "graphml": path, "dot": path[, "masks": path]}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {k: directory / f"{stem}.{k}" for k in ("json", "graphml", "dot")}
    atomic_write_json(paths["json"], circuit.to_json())
    tmp = paths["graphml"].with_suffix(".graphml.tmp")
    nx.write_graphml(to_networkx(circuit), tmp)
    tmp.replace(paths["graphml"])
    write_dot(circuit, paths["dot"])
    if log_alpha is not None:
        from safetensors.torch import save_file
        paths["masks"] = directory / f"{stem}.masks.safetensors"
        tmp = directory / f".{stem}.masks.tmp"
        save_file({"log_alpha": log_alpha.detach().float().contiguous()}, str(tmp))
        tmp.replace(paths["masks"])
    return {k: str(p) for k, p in paths.items()}
