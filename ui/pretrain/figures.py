"""Pretraining figures: train / validation loss, tokens/s and MFU against step (one figure,
three rows, traces in the fixed order of :data:`PRETRAIN_SERIES` so pollers extend trace ``i``),
and the one-line device summary. Plain Plotly, no Dash: used by the page and the widget."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures import empty_state

# (metric, subplot row, colour, dash)
PRETRAIN_SERIES = (
    ("train_loss", 1, "#1f77b4", "solid"),
    ("val_loss", 1, "#d62728", "solid"),
    ("tokens_per_second", 2, "#2ca02c", "solid"),
    ("mfu", 3, "#9467bd", "solid"),
)
PRETRAIN_NAMES = tuple(s[0] for s in PRETRAIN_SERIES)


def pretrain_curves(history: dict[str, list[tuple[int, float]]] | None = None, *,
                    height: int = 640, empty: str | None = None) -> go.Figure:
    """Loss (top), tokens/s (middle) and MFU (bottom) from ``{metric: [(step, value)]}``."""
    history = history or {}
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07,
                        row_heights=[0.5, 0.25, 0.25],
                        subplot_titles=("loss", "tokens / s", "MFU"))
    fig.update_annotations(x=0, xanchor="left", font={"size": 13})
    for name, row, colour, dash in PRETRAIN_SERIES:
        points = history.get(name, [])
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                 mode="lines+markers", name=name.replace("_", " "),
                                 line={"color": colour, "dash": dash, "width": 2},
                                 marker={"size": 4}), row=row, col=1)
    fig.update_layout(height=height, template="plotly_white", uirevision="pretrain",
                      margin={"l": 60, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": 1.02, "x": 0.12, "yanchor": "bottom"})
    fig.update_yaxes(tickformat=".1%", row=3, col=1)
    fig.update_xaxes(title_text="step", row=3, col=1)
    if empty and not any(history.get(n) for n in PRETRAIN_NAMES):
        empty_state(fig, empty)
    return fig


def rows_to_pretrain_series(rows) -> dict[str, tuple[list[int], list[float]]]:
    """Metric rows ``(row_id, step, name, value)`` -> ``{name: (steps, values)}``."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for _, step, name, value in rows:
        if name in PRETRAIN_NAMES and math.isfinite(value):
            xs, ys = out.setdefault(name, ([], []))
            xs.append(step)
            ys.append(value)
    return out


def device_text(info: dict | None) -> str:
    """``"cuda NVIDIA H100 x 8 (fsdp), bf16, compiled; peak 989 TFLOP/s (H100 dense bf16)"``."""
    if not info:
        return "device: not known yet (the run records it when training starts)"
    name = info.get("name", info.get("device", "?"))
    parts = [f"{info.get('device', '?')} {name} x {info.get('world_size', 1)}"
             + (f" ({info['parallel']})" if info.get("parallel") not in (None, "none") else "")]
    parts.append("bf16" if info.get("bf16") else "fp32")
    if info.get("compile"):
        parts.append("compiled")
    if info.get("n_params"):
        parts.append(f"{info['n_params'] / 1e6:.2f}M parameters")
    peak = info.get("peak_tflops")
    if peak:
        parts.append(f"peak {peak:.3g} TFLOP/s ({info.get('peak_source', '')})")
    return ", ".join(parts)
