"""Figure factories for circuits, shared by the browser page and the notebook widgets.

- :func:`circuit_layout` computes the layered drawing of a circuit once, in Python: embeddings at
  the bottom, one row per attention layer (and per MLP), the logits at the top; each head's Q, K
  and V readers are small dots just below it (a K/V reader under grouped-query attention sits
  under its group). Circuit edges go from a writer to a reader, width by mask score, coloured by
  the reader's channel (q, k, v, MLP in, logits); dashed internal edges join a reader to its head.
- :func:`cytoscape_elements` / :func:`cytoscape_stylesheet` draw that layout with
  dash-cytoscape's ``preset`` layout; :func:`circuit_figure` draws the same layout with plotly
  (notebook widgets, static export).
- :func:`faithfulness_curves`: KL vs number of edges per method, from a sweep's summary rows.
- :func:`search_progress`: KL (or logit difference), sparsity vs target and λ during a search, in
  a fixed trace order (:data:`SEARCH_SERIES`) so pollers extend traces with new rows only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures import empty_state

KIND_COLOURS = {"embedding": "#9e9e9e", "attention": "#4a90d9", "mlp": "#f28e2b",
                "logits": "#59a14f"}
CHANNEL_COLOURS = {"q": "#4a90d9", "k": "#e15759", "v": "#76b7b2", "mlp": "#f28e2b",
                   "logits": "#59a14f"}
COMPARE_COLOURS = {"shared": "#6a3d9a", "only-a": "#e15759", "only-b": "#4a90d9"}
X_SLOT, Y_LEVEL = 110.0, 140.0  # pixels between heads, between rows (cytoscape coordinates)
KL_FLOOR = 1e-7  # plotted in place of 0 on log axes
MAX_DRAWN_EDGES = 2500  # beyond this the browser stalls; the highest-scoring edges are drawn
NO_SWEEP_DATA = "no finished sweep entries to plot: run  workbench circuits sweep SPEC.yaml"

# (metric, subplot row, colour, dash): the trace order of search_progress().
SEARCH_SERIES = (
    ("kl", 1, "#d62728", "solid"),
    ("logit_diff", 1, "#9467bd", "solid"),
    ("sparsity", 2, "#1f77b4", "solid"),
    ("target", 2, "#7f7f7f", "dot"),
    ("lambda1", 3, "#2ca02c", "solid"),
    ("lambda2", 3, "#bcbd22", "solid"),
)
SEARCH_NAMES = tuple(s[0] for s in SEARCH_SERIES)


@dataclass
class GraphLayout:
    """Nodes and edges with positions (x right, y down, as cytoscape wants)."""

    nodes: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)  # circuit edges first, then internal
    n_circuit_edges: int = 0
    n_dropped: int = 0  # circuit edges not drawn (over MAX_DRAWN_EDGES)

    def edge_names(self) -> list[str]:
        return [e["id"] for e in self.edges if e["kind"] == "circuit"]


def _channel(reader: str) -> str:
    if reader == "logits":
        return "logits"
    if reader.endswith(".in"):
        return "mlp"
    return reader.rsplit(".", 1)[1]


def circuit_layout(circuit, *, edge_class: dict[str, str] | None = None,
                   max_edges: int = MAX_DRAWN_EDGES) -> GraphLayout:
    """The layered drawing of ``circuit`` (a :class:`circuits.io.Circuit`).

    ``edge_class`` tags edges (e.g. ``shared``/``only-a``/``only-b`` for comparisons)."""
    spec = circuit.spec
    h, g_kv, n_layers = spec.n_heads, spec.n_kv_heads, spec.n_layers
    group = h // g_kv
    rows_per_layer = 2 if spec.has_mlp else 1
    head_x = [(i - (h - 1) / 2) * X_SLOT for i in range(h)]

    def y(level: float) -> float:
        return -level * Y_LEVEL  # cytoscape's y grows downwards; level 0 is the bottom

    edges = sorted(circuit.edges, key=lambda n: -float(circuit.scores.get(n, 1.0)))
    dropped = max(0, len(edges) - max_edges)
    edges = edges[:max_edges]
    used_writers = {e.split("->")[0] for e in edges}
    used_readers = {e.split("->")[1] for e in edges}
    used_components = used_writers | {_reader_component(r, group) for r in used_readers}
    used_components |= {c for r in used_readers for c in _reader_heads(r, group)}

    nodes: list[dict] = []

    def add(node_id, label, kind, role, x, yy, layer):
        active = node_id in used_components or node_id in used_readers
        nodes.append({"id": node_id, "label": label, "kind": kind, "role": role, "x": x,
                      "y": yy, "layer": layer, "active": active})

    embeds = ["tok_embed"] + (["pos_embed"] if spec.separate_pos else [])
    for i, name in enumerate(embeds):
        x = 0.0 if len(embeds) == 1 else (i - 0.5) * 2 * X_SLOT
        add(name, name.replace("_embed", " embed"), "embedding", "writer", x, y(0), -1)
    readers_here: list[tuple[str, float, float]] = []
    for layer in range(n_layers):
        level = 1 + layer * rows_per_layer
        for head in range(h):
            add(f"a{layer}.h{head}", f"a{layer}.h{head}", "attention", "writer", head_x[head],
                y(level), layer)
            readers_here.append((f"a{layer}.h{head}.q", head_x[head] - 0.28 * X_SLOT,
                                 y(level - 0.38)))
        for grp in range(g_kv):
            centre = sum(head_x[grp * group:(grp + 1) * group]) / group
            offset = 0.0 if group == 1 else 0.14 * X_SLOT
            readers_here.append((f"a{layer}.g{grp}.k", centre - offset, y(level - 0.38)))
            readers_here.append((f"a{layer}.g{grp}.v", centre + 0.28 * X_SLOT - offset / 2,
                                 y(level - 0.38)))
        if spec.has_mlp:
            add(f"m{layer}", f"MLP {layer}", "mlp", "writer", 0.0, y(level + 1), layer)
            readers_here.append((f"m{layer}.in", 0.0, y(level + 1 - 0.38)))
    add("logits", "logits", "logits", "reader", 0.0, y(1 + n_layers * rows_per_layer), n_layers)
    for name, x, yy in readers_here:
        if name in used_readers:  # unused readers would only clutter the drawing
            nodes.append({"id": name, "label": name.rsplit(".", 1)[1].upper()
                          if not name.endswith(".in") else "in", "kind": "reader",
                          "role": "reader", "x": x, "y": yy, "layer": None, "active": True})

    scores = [float(circuit.scores.get(n, 1.0)) for n in edges]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
    out_edges = []
    for name, score in zip(edges, scores):
        w, r = name.split("->")
        rel = (score - lo) / (hi - lo) if hi > lo else 1.0
        out_edges.append({"id": name, "source": w, "target": r, "kind": "circuit",
                          "channel": _channel(r), "score": score,
                          "width": round(1.0 + 5.0 * rel, 2),
                          "cls": (edge_class or {}).get(name, "")})
    for r in sorted(used_readers - {"logits"}):
        for head in _reader_heads(r, group) or [_reader_component(r, group)]:
            out_edges.append({"id": f"{r}=>{head}", "source": r, "target": head,
                              "kind": "internal", "channel": _channel(r), "score": 1.0,
                              "width": 1.0, "cls": ""})
    return GraphLayout(nodes=nodes, edges=out_edges, n_circuit_edges=len(edges),
                       n_dropped=dropped)


def _reader_component(reader: str, group: int) -> str:
    if reader == "logits":
        return "logits"
    if reader.endswith(".in"):
        return reader[:-3]
    return reader.rsplit(".", 1)[0]


def _reader_heads(reader: str, group: int) -> list[str]:
    """The heads a K/V group reader feeds (empty for other readers)."""
    parts = reader.split(".")
    if len(parts) == 3 and parts[1].startswith("g"):
        grp = int(parts[1][1:])
        return [f"{parts[0]}.h{i}" for i in range(grp * group, (grp + 1) * group)]
    if len(parts) == 3 and parts[1].startswith("h"):
        return [f"{parts[0]}.{parts[1]}"]
    return []


# -- dash-cytoscape ------------------------------------------------------------------------------
def cytoscape_elements(layout: GraphLayout) -> list[dict]:
    """Elements for ``dash_cytoscape.Cytoscape(layout={"name": "preset"})``."""
    out = []
    for n in layout.nodes:
        classes = f"{n['kind']} {n['role']}" + ("" if n["active"] else " inactive")
        out.append({"data": {"id": n["id"], "label": n["label"], "kind": n["kind"]},
                    "position": {"x": n["x"], "y": n["y"]}, "classes": classes,
                    "grabbable": False})
    for e in layout.edges:
        classes = f"{e['kind']} ch-{e['channel']}" + (f" {e['cls']}" if e["cls"] else "")
        out.append({"data": {"id": e["id"], "source": e["source"], "target": e["target"],
                             "score": round(e["score"], 4), "width": e["width"]},
                    "classes": classes})
    return out


def cytoscape_stylesheet() -> list[dict]:
    sheet = [
        {"selector": "node", "style": {"label": "data(label)", "font-size": 11,
                                       "text-valign": "center", "text-halign": "center",
                                       "width": 58, "height": 26, "shape": "round-rectangle",
                                       "color": "#fff", "border-width": 0}},
        {"selector": "node.reader", "style": {"width": 16, "height": 16, "shape": "ellipse",
                                              "font-size": 8, "background-color": "#555"}},
        {"selector": "node.logits", "style": {"width": 80, "shape": "round-rectangle"}},
        {"selector": "node.inactive", "style": {"opacity": 0.25}},
        {"selector": "node:selected", "style": {"border-width": 3, "border-color": "#222"}},
        {"selector": "edge", "style": {"curve-style": "bezier", "width": "data(width)",
                                       "target-arrow-shape": "triangle", "opacity": 0.75,
                                       "arrow-scale": 0.7}},
        {"selector": "edge.internal", "style": {"line-style": "dashed", "width": 1,
                                                "line-color": "#bbb",
                                                "target-arrow-shape": "none"}},
        {"selector": "edge.highlight", "style": {"opacity": 1, "z-index": 10,
                                                 "line-color": "#222",
                                                 "target-arrow-color": "#222"}},
    ]
    for kind, colour in KIND_COLOURS.items():
        sheet.append({"selector": f"node.{kind}", "style": {"background-color": colour}})
    for ch, colour in CHANNEL_COLOURS.items():
        sheet.append({"selector": f"edge.circuit.ch-{ch}",
                      "style": {"line-color": colour, "target-arrow-color": colour}})
    for cls, colour in COMPARE_COLOURS.items():
        sheet.append({"selector": f"edge.{cls}",
                      "style": {"line-color": colour, "target-arrow-color": colour}})
    return sheet


# -- plotly ----------------------------------------------------------------------------------
def circuit_figure(layout: GraphLayout, *, title: str | None = None,
                   height: int = 560) -> go.Figure:
    """The same drawing with plotly: one line trace per (channel, width bin), then one marker
    trace per node kind (``customdata`` holds the node ids)."""
    pos = {n["id"]: (n["x"], -n["y"]) for n in layout.nodes}
    fig = go.Figure()
    groups: dict[tuple[str, float], list[dict]] = {}
    for e in layout.edges:
        key = ("internal" if e["kind"] == "internal" else e["cls"] or e["channel"],
               round(e["width"]))
        groups.setdefault(key, []).append(e)
    for (channel, width), items in sorted(groups.items()):
        xs, ys = [], []
        for e in items:
            (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        colour = "#bbbbbb" if channel == "internal" else \
            COMPARE_COLOURS.get(channel) or CHANNEL_COLOURS.get(channel, "#555")
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                 line={"color": colour, "width": max(1, width),
                                       "dash": "dash" if channel == "internal" else "solid"},
                                 name=f"{channel} edges", showlegend=False,
                                 meta={"role": "edges", "channel": channel,
                                       "n": len(items)}))
    kinds: dict[str, list[dict]] = {}
    for n in layout.nodes:
        kinds.setdefault(n["kind"], []).append(n)
    for kind, items in kinds.items():
        fig.add_trace(go.Scatter(
            x=[pos[n["id"]][0] for n in items], y=[pos[n["id"]][1] for n in items],
            mode="markers+text", text=[n["label"] for n in items], textposition="middle right"
            if kind == "reader" else "top center", customdata=[n["id"] for n in items],
            marker={"size": 8 if kind == "reader" else 18,
                    "color": KIND_COLOURS.get(kind, "#555"),
                    "opacity": [1.0 if n["active"] else 0.25 for n in items],
                    "symbol": "circle" if kind == "reader" else "square"},
            name=kind, hovertemplate="%{customdata}<extra></extra>",
            meta={"role": "nodes", "kind": kind}))
    fig.update_layout(height=height, template="plotly_white", title=title,
                      margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False},
                      legend={"orientation": "h"})
    return fig


# -- sweeps ----------------------------------------------------------------------------------
def curve_label(row: dict) -> str:
    return f"{row['method']} | {Path(str(row['model'])).name} | {Path(str(row['task'])).name}"


def faithfulness_series(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Sweep summary rows → ``{label: [(n_edges, kl), ...]}`` sorted by edges."""
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        kl, n = r.get("kl"), r.get("n_edges")
        if kl is None or n is None or not math.isfinite(float(kl)):
            continue
        series.setdefault(curve_label(r), []).append((int(n), float(kl)))
    return {k: sorted(v) for k, v in sorted(series.items())}


def faithfulness_curves(rows: list[dict], *, log_y: bool = True, title: str | None = None,
                        height: int = 440, empty: str = NO_SWEEP_DATA) -> go.Figure:
    """KL(full ‖ circuit) against the number of edges, one line per method/model/task
    (``empty``, instead of the axes, when no row has both)."""
    fig = go.Figure()
    series = faithfulness_series(rows)
    for label, pts in series.items():
        # a KL of exactly 0 (a lossless circuit) would vanish from a log axis
        ys = [max(p[1], KL_FLOOR) if log_y else p[1] for p in pts]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=ys,
                                 mode="lines+markers", name=label,
                                 line={"dash": "solid" if label.startswith("edge-pruning")
                                       else "dot"}))
    fig.update_layout(height=height, template="plotly_white",
                      title=title or "Faithfulness vs circuit size",
                      xaxis_title="edges in circuit", yaxis_title="KL(full ‖ circuit)",
                      yaxis_type="log" if log_y else "linear",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig if series else empty_state(fig, empty)


# -- live search progress --------------------------------------------------------------------
def search_progress(history: dict[str, list[tuple[int, float]]] | None = None, *,
                    height: int = 460, empty: str | None = None) -> go.Figure:
    """Task loss (top), expected sparsity and its target (middle), λ₁ and λ₂ (bottom);
    ``empty`` is shown instead of the axes while there is no point at all."""
    history = history or {}
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        subplot_titles=("faithfulness", "sparsity", "Lagrange multipliers"))
    for name, row, colour, dash in SEARCH_SERIES:
        pts = history.get(name, [])
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines",
                                 name=name.replace("_", " "),
                                 line={"color": colour, "dash": dash, "width": 2}),
                      row=row, col=1)
    fig.update_layout(height=height, template="plotly_white", uirevision="search",
                      margin={"l": 60, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.12})
    fig.update_xaxes(title_text="step", row=3, col=1)
    if empty and not any(history.values()):
        empty_state(fig, empty)
    return fig


def rows_to_search_series(rows) -> dict[str, tuple[list[int], list[float]]]:
    """Metric rows ``(row_id, step, name, value)`` → ``{name: (steps, values)}``."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for _, step, name, value in rows:
        if name in SEARCH_NAMES and math.isfinite(value):
            xs, ys = out.setdefault(name, ([], []))
            xs.append(step)
            ys.append(value)
    return out
