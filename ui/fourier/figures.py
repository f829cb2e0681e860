"""Figure factories of the Fourier analysis, shared by the browser page
(:mod:`ui.fourier.run_page`) and the notebook widget (:mod:`ui.fourier.widgets`).

Each takes plain data from the cached ``workbench fourier RUN --checkpoint all`` payload (or
tensors from :func:`workbench.fourier.views.checkpoint_views`) and returns a
``plotly.graph_objects.Figure``; the standard figures of Nanda et al. (2023): train/test curves
on log axes with the phase lines, W_E and W_L Fourier norms, one neuron over ``(a, b)``, the
2-D Fourier norm map of the logits, the histogram of neuron explained fractions and the progress
measures over checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures import training_curves

PHASE_LINES = (("memorisation_end", "memorisation", "#7f7f7f"),
               ("circuit_formation_end", "circuit formation", "#ff7f0e"),
               ("cleanup_end", "cleanup", "#2ca02c"))
KEY_COLOUR, OTHER_COLOUR = "#d62728", "#9ecae1"
EXPLAINED_THRESHOLD = 0.85
# (payload field, label, subplot row): the trace order of progress_measures()
MEASURES = (("full_loss", "full loss", 1), ("restricted_loss", "restricted loss", 1),
            ("excluded_loss", "excluded loss (train)", 1), ("test_loss", "test loss", 1),
            ("gini_embedding", "Gini W_E", 2), ("gini_unembedding", "Gini W_L", 2),
            ("sum_squared_weights", "sum of squared weights", 3))


def _layout(fig: go.Figure, height: int, title: str | None = None, top: int = 50) -> go.Figure:
    fig.update_layout(height=height, template="plotly_white", title=title,
                      margin={"l": 60, "r": 20, "t": top if title else 30, "b": 40})
    return fig


def vline(fig: go.Figure, step: float, row: int, *, log_x: bool, label: str | None = None,
          **line) -> None:
    """A vertical line at ``step`` on subplot ``row``. On a log axis plotly.js places shapes in
    data units but annotations in log10 units, so the label is added on its own."""
    if log_x and step <= 0:
        return
    fig.add_vline(x=step, line=line, row=row, col=1)
    if label:
        axis = "" if row == 1 else str(row)
        fig.add_annotation(x=math.log10(step) if log_x else step, y=1.0, xref=f"x{axis}",
                           yref=f"y{axis} domain", text=label, showarrow=False,
                           yanchor="bottom", font={"size": 10})


def add_phase_lines(fig: go.Figure, phases: dict | None, rows: Sequence[int] = (1,), *,
                    log_x: bool = False) -> None:
    """Dashed vertical lines at the detected phase ends (labelled on the first row)."""
    for key, label, colour in PHASE_LINES:
        step = (phases or {}).get(key)
        if step is None:
            continue
        for i, row in enumerate(rows):
            vline(fig, step, row, log_x=log_x, label=f"{label} ends" if i == 0 else None,
                  dash="dash", color=colour, width=1.5)


def phase_curves(history: dict[str, list[tuple[int, float]]] | None, phases: dict | None, *,
                 height: int = 480) -> go.Figure:
    """Train/test loss and accuracy on log-log axes with the phase boundaries."""
    history = {k: [(s, v) for s, v in rows if s > 0] for k, rows in (history or {}).items()}
    fig = training_curves(history, log_x=True, log_y=True, height=height)
    add_phase_lines(fig, phases, rows=(1, 2), log_x=True)
    return fig


def norm_bars(report: dict, keys: Sequence[int] | None = None, *,
              height: int = 340) -> go.Figure:
    """Per-frequency Fourier norms of W_E and W_L (key frequencies highlighted)."""
    keys = set(report.get("key_frequencies", []) if keys is None else keys)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("W_E Fourier norms",
                                                        "W_L = W_out W_U Fourier norms"))
    for col, name in ((1, "embedding_fourier_norms"), (2, "unembedding_fourier_norms")):
        norms = report.get(name) or []
        freqs = list(range(len(norms)))
        fig.add_trace(go.Bar(x=freqs, y=norms, name=name.split("_")[0],
                             marker_color=[KEY_COLOUR if k in keys else OTHER_COLOUR
                                           for k in freqs], showlegend=False,
                             hovertemplate="frequency %{x}: %{y:.3g}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="frequency k (0 = constant)", row=1, col=col)
    fig.update_yaxes(title_text="norm", row=1, col=1)
    return _layout(fig, height, f"step {report.get('step')} · key frequencies "
                                f"{sorted(keys)}", top=80)


def neuron_heatmap(grid, neuron: int, *, frequency: int | None = None,
                   fraction: float | None = None, height: int = 420) -> go.Figure:
    """One neuron's activation over the ``(a, b)`` grid (``grid`` ``[p, p]``, a = rows)."""
    z = grid.tolist() if hasattr(grid, "tolist") else grid
    fig = go.Figure(go.Heatmap(z=z, colorscale="Viridis", colorbar={"title": "act"},
                               hovertemplate="a %{y}, b %{x}: %{z:.3g}<extra></extra>"))
    info = f" · frequency {frequency}" if frequency is not None else ""
    if fraction is not None:
        info += f" · explained {fraction:.2f}"
    fig.update_xaxes(title_text="b", constrain="domain")
    fig.update_yaxes(title_text="a", scaleanchor="x", autorange="reversed")
    return _layout(fig, height, f"neuron {neuron}{info}")


def basis_labels(n: int) -> list[str]:
    """Row names of the Fourier basis over Z_n: const, cos 1, sin 1, ... (cos n/2 if even)."""
    out = ["const"]
    for k in range(1, n // 2 + 1):
        out.append(f"cos {k}")
        if 2 * k != n:
            out.append(f"sin {k}")
    return out[:n]


def logit_map(fourier_map, *, height: int = 420, max_frequency: int | None = None) -> go.Figure:
    """The 2-D Fourier norm map of the logits (a basis on rows, b basis on columns)."""
    z = fourier_map.tolist() if hasattr(fourier_map, "tolist") else fourier_map
    n = len(z)
    labels = basis_labels(n)
    if max_frequency is not None:
        keep = 1 + 2 * max_frequency
        z = [row[:keep] for row in z[:keep]]
        labels = labels[:keep]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues",
                               colorbar={"title": "norm"},
                               hovertemplate="%{y} × %{x}: %{z:.3g}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="a")
    fig.update_xaxes(title_text="b")
    return _layout(fig, height, "logits: 2-D Fourier norm map")


def explained_histogram(fractions: Sequence[float], *, threshold: float = EXPLAINED_THRESHOLD,
                        height: int = 340) -> go.Figure:
    """Histogram of the neurons' explained fractions with the explained threshold."""
    fractions = list(fractions)
    share = sum(f > threshold for f in fractions) / len(fractions) if fractions else 0.0
    fig = go.Figure(go.Histogram(x=fractions, xbins={"start": 0, "end": 1.0001, "size": 0.025},
                                 marker_color="#1f77b4", name="neurons"))
    fig.add_vline(x=threshold, line={"dash": "dash", "color": KEY_COLOUR},
                  annotation_text=f"{threshold:g}", annotation_position="top left")  # linear
    fig.update_xaxes(title_text="variance explained by the neuron's frequency", range=[0, 1])
    fig.update_yaxes(title_text="neurons")
    return _layout(fig, height, f"neuron explained fractions · {100 * share:.0f}% > "
                                f"{threshold:g}")


def progress_measures(series: dict, step: int | None = None, *, log_x: bool = True,
                      height: int = 560) -> go.Figure:
    """Losses (full, restricted, excluded, test), Gini of the Fourier norms and the sum of
    squared weights over checkpoints, with phase lines and a marker at ``step``."""
    reports = [r for r in series.get("checkpoints", []) if r.get("step") is not None]
    if log_x:
        reports = [r for r in reports if r["step"] > 0]
    steps = [r["step"] for r in reports]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        row_heights=[0.5, 0.25, 0.25],
                        subplot_titles=("progress losses", "Gini of Fourier norms",
                                        "sum of squared weights"))
    fig.update_annotations(x=0, xanchor="left", font={"size": 13})
    palette = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#17becf")
    for (field, label, row), colour in zip(MEASURES, palette):
        fig.add_trace(go.Scatter(x=steps, y=[r.get(field) for r in reports], name=label,
                                 mode="lines+markers", marker={"size": 4},
                                 line={"color": colour}), row=row, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log" if log_x else "linear")
    fig.update_xaxes(title_text="step", row=3, col=1)
    add_phase_lines(fig, series.get("phases"), rows=(1, 2, 3), log_x=log_x)
    if step is not None:
        for row in (1, 2, 3):
            vline(fig, step, row, log_x=log_x, color="black", width=2)
    fig.update_layout(legend={"orientation": "h", "y": 1.04, "x": 0.3, "yanchor": "bottom"},
                      uirevision="measures")
    return _layout(fig, height)


__all__ = ["MEASURES", "PHASE_LINES", "add_phase_lines", "basis_labels", "explained_histogram",
           "logit_map", "neuron_heatmap", "norm_bars", "phase_curves", "progress_measures",
           "vline"]
