"""Probe-fit figures from stored ``workbench probes fit`` payloads: the layer x position
heatmaps (held-out score, control task, selectivity, random-init model), the baselines per
position (best probe vs the embedding layer, the random-init model and chance) and the score
over checkpoint steps of a series. Plain Plotly, no Dash: shared by the page and the widget.

The numbers drawn are the stored ones; the few derived here (the best site per position, the
grouping of a series' per-step results) are pure functions a test can check against the store.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures import empty_state

# trace names of baseline_lines(), in order
BASELINE_TRACES = ("probe (best site)", "embedding (resid.0)", "random-init model (best site)",
                   "chance")
MAX_LABELLED_CELLS = 240  # beyond this the numbers in the cells are unreadable: hover only
_STEP_DIR = re.compile(r"step_\d+")


def empty_note(fig, message: str, width: int = 70):
    """:func:`ui.figures.empty_state` with the message wrapped to lines of ``width``
    characters (the commands it names are longer than a half-width figure)."""
    return empty_state(fig, "<br>".join(textwrap.wrap(message, width)))


@dataclass(frozen=True)
class FitGroup:
    """The stored fits of one probe setting: one per checkpoint step when it is a series."""

    label: str
    keys: tuple[str, ...]
    payloads: tuple[dict, ...]  # sorted by step

    @property
    def is_series(self) -> bool:
        return len(self.payloads) > 1

    @property
    def steps(self) -> list:
        return [step_of(p) for p in self.payloads]

    @property
    def latest(self) -> dict:
        return self.payloads[-1]


def step_of(payload: dict):
    return (payload.get("model") or {}).get("step")


def _series_root(acts: str | None) -> str:
    """A series' per-step results come from ``ROOT/step_N`` directories: group them by ROOT."""
    if not acts:
        return ""
    path = Path(acts)
    return str(path.parent) if _STEP_DIR.fullmatch(path.name) else str(path)


def fit_label(payload: dict) -> str:
    control = " · control" if payload.get("control_score") is not None else ""
    split = f" · split by {payload['split_by']}" if payload.get("split_by") else ""
    return f"{payload.get('target')} · {payload.get('kind')}{split}{control}"


def group_fits(results: dict[str, dict]) -> list[FitGroup]:
    """Stored fits ``{key: payload}`` grouped by setting (activations root, target, kind,
    split, control); within a group, ordered by checkpoint step."""
    groups: dict[tuple, list[tuple[str, dict]]] = {}
    for key, payload in results.items():
        ident = (_series_root(payload.get("acts")), payload.get("target"), payload.get("kind"),
                 payload.get("split_by"), payload.get("control_score") is not None)
        groups.setdefault(ident, []).append((key, payload))
    out = []
    for ident, items in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        items.sort(key=lambda kp: (step_of(kp[1]) is None, step_of(kp[1]) or 0))
        label = fit_label(items[0][1])
        if len(items) > 1:
            label += f" · {len(items)} checkpoints"
        root = Path(ident[0]).name
        out.append(FitGroup(label=f"{label} ({root})" if root else label,
                            keys=tuple(k for k, _ in items),
                            payloads=tuple(p for _, p in items)))
    return out


def best_by_position(grid: list[list[float]] | None) -> list[float] | None:
    """Max over sites (rows) of a site x position grid, per position."""
    if not grid:
        return None
    return [max(column) for column in zip(*grid)]


def heatmap_panels(payload: dict) -> list[tuple[str, list[list[float]]]]:
    """``(title, site x position grid)`` of every grid the fit stored, in drawing order."""
    metric = payload.get("metric", "accuracy")
    panels = [(f"held-out {metric}", payload["test_score"])]
    if payload.get("control_score") is not None:
        panels.append(("control task", payload["control_score"]))
    if payload.get("selectivity") is not None:
        panels.append(("selectivity (task - control)", payload["selectivity"]))
    base = (payload.get("random_baseline") or {}).get("test_score")
    if base is not None:
        panels.append(("random-init model", base))
    return panels


def probe_heatmaps(payload: dict | None = None, *, height: int = 380,
                   empty: str | None = None) -> go.Figure:
    """One heatmap per :func:`heatmap_panels` grid, sites (rows) by positions (columns);
    scores share one colour scale, selectivity its own (diverging, centred on 0)."""
    if not payload:
        fig = go.Figure(go.Heatmap(z=[], name="held-out"))
        fig.update_layout(height=height, template="plotly_white")
        return empty_note(fig, empty or "no probe fit", width=110)
    panels = heatmap_panels(payload)
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[t for t, _ in panels])
    low = 0.0 if payload.get("metric", "accuracy") == "accuracy" else None
    cells = len(payload["sites"]) * len(payload["positions"]) * len(panels)
    for i, (title, grid) in enumerate(panels, start=1):
        selectivity = title.startswith("selectivity")
        fig.add_trace(go.Heatmap(
            z=grid, x=list(payload["positions"]), y=list(payload["sites"]), name=title,
            coloraxis="coloraxis2" if selectivity else "coloraxis",
            texttemplate="%{z:.2f}" if cells <= MAX_LABELLED_CELLS else None,
            hovertemplate="%{y} @ %{x}: %{z:.3f}<extra>" + title + "</extra>"), row=1, col=i)
    fig.update_layout(
        height=height, template="plotly_white", margin={"l": 70, "r": 20, "t": 40, "b": 40},
        coloraxis={"colorscale": "Viridis", "cmin": low, "cmax": 1.0 if low == 0 else None,
                   "colorbar": {"title": payload.get("metric", ""), "x": 1.0, "len": 0.9}},
        coloraxis2={"colorscale": "RdBu", "cmid": 0.0,
                    "colorbar": {"title": "selectivity", "x": 1.08, "len": 0.9}})
    fig.update_xaxes(title_text="position", type="category")
    fig.update_yaxes(type="category", row=1, col=1, title_text="site")
    return fig


def baseline_points(payload: dict) -> dict[str, list[float] | None]:
    """Trace name of :data:`BASELINE_TRACES` -> score per position (None if not stored)."""
    n = len(payload["positions"])
    base = (payload.get("random_baseline") or {}).get("test_score")
    return {BASELINE_TRACES[0]: best_by_position(payload["test_score"]),
            BASELINE_TRACES[1]: payload.get("embedding_baseline"),
            BASELINE_TRACES[2]: best_by_position(base),
            BASELINE_TRACES[3]: [payload.get("chance", 0.0)] * n}


def baseline_lines(payload: dict | None = None, *, height: int = 380,
                   empty: str | None = None) -> go.Figure:
    """Per position: the best site's probe beside the embedding-layer probe, the random-init
    model's best site and chance (traces always in :data:`BASELINE_TRACES` order)."""
    fig = go.Figure()
    points = baseline_points(payload) if payload else {}
    x = list(payload["positions"]) if payload else []
    for name, dash in zip(BASELINE_TRACES, ("solid", "dot", "dash", "dashdot")):
        y = points.get(name)
        fig.add_trace(go.Scatter(x=x if y is not None else [], y=y or [], name=name,
                                 mode="lines+markers", line={"dash": dash, "width": 2}))
    fig.update_layout(height=height, template="plotly_white", title="baselines",
                      margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(title_text="position", type="category")
    fig.update_yaxes(title_text=(payload or {}).get("metric", "score"))
    if not payload:
        empty_note(fig, empty or "no probe fit", width=60)
    return fig


def series_points(group: FitGroup | None) -> dict[str, tuple[list, list[float]]]:
    """``{"best": (steps, best score)}`` plus ``{site: (steps, best over positions)}``."""
    if group is None or not group.is_series:
        return {}
    steps = group.steps
    out = {"best": (steps, [p["best"]["test_score"] for p in group.payloads])}
    for i, site in enumerate(group.payloads[0]["sites"]):
        out[site] = (steps, [max(p["test_score"][i]) for p in group.payloads])
    return out


def probe_series(group: FitGroup | None = None, *, height: int = 340,
                 empty: str | None = None) -> go.Figure:
    """The probe's held-out score against checkpoint step: the best group, and each site's
    best position (a fit over ``step_*`` directories)."""
    fig = go.Figure()
    for name, (steps, values) in series_points(group).items():
        fig.add_trace(go.Scatter(x=steps, y=values, name=name, mode="lines+markers",
                                 line={"width": 3 if name == "best" else 1.5}))
    metric = group.latest.get("metric", "score") if group else "score"
    fig.update_layout(height=height, template="plotly_white", title="over training",
                      margin={"l": 60, "r": 20, "t": 40, "b": 40})
    fig.update_xaxes(title_text="checkpoint step")
    fig.update_yaxes(title_text=f"held-out {metric}")
    if not fig.data:
        fig.add_trace(go.Scatter(x=[], y=[], name="best"))
        empty_note(fig, empty or "not a checkpoint series", width=60)
    return fig


def fit_summary(payload: dict) -> str:
    """One line: best site and position, chance, sizes, and the causal check when stored."""
    b = payload["best"]
    text = (f"best {b['site']} @ {b['position']}: {b['test_score']:.3f} "
            f"({payload.get('metric')}; chance {payload.get('chance', 0):.3f}; "
            f"train {payload.get('n_train')}, test {payload.get('n_test')})")
    base = (payload.get("random_baseline") or {}).get("best")
    if base:
        text += f" · random-init best {base['test_score']:.3f}"
    causal = payload.get("causal")
    if causal:
        text += (f" · causal {causal.get('mode')} {causal.get('site')}: answers changed "
                 f"{causal.get('answer_changed', 0):.3f} (random "
                 f"{causal.get('random_answer_changed', 0):.3f})")
    return text
