"""Figures several capabilities draw (training curves, the progress label) and the empty state
every figure shows before its data exists; each capability's own plots are in its package.

Every factory returns a plain ``plotly.graph_objects.Figure``; the app hands it to
``dcc.Graph`` and the widgets wrap it in ``go.FigureWidget``. Live updates append points to
traces in a fixed order (:data:`CURVE_SERIES`), so a poller can extend trace ``i`` with only the
new rows instead of rebuilding the figure.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# (metric name, subplot row, colour, dash): the trace order of training_curves().
CURVE_SERIES = (
    ("train_loss", 1, "#1f77b4", "solid"),
    ("test_loss", 1, "#d62728", "solid"),
    ("train_acc", 2, "#1f77b4", "dot"),
    ("test_acc", 2, "#d62728", "dot"),
)
CURVE_NAMES = tuple(s[0] for s in CURVE_SERIES)
EMPTY_STATE = "empty-state"  # name of the annotation that stands in for data not there yet


def empty_state(fig, message: str):
    """Show ``message`` (say which command or button makes the data) in place of ``fig``'s axes,
    which would otherwise be meaningless. The traces stay, so a poller can still extend them;
    :func:`clear_empty_state` brings the axes back. Returns ``fig``."""
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for note in fig.layout.annotations:  # subplot titles would float over nothing
        note.visible = False
    fig.add_annotation(text=message, name=EMPTY_STATE, x=0.5, y=0.5, xref="paper",
                       yref="paper", showarrow=False, font={"size": 14, "color": "#6b7280"})
    return fig


def has_empty_state(fig) -> bool:
    return any(note.name == EMPTY_STATE for note in fig.layout.annotations)


def clear_empty_state(fig) -> None:
    """Undo :func:`empty_state` (in place; on a ``FigureWidget`` too)."""
    if not has_empty_state(fig):
        return
    fig.layout.annotations = [n for n in fig.layout.annotations if n.name != EMPTY_STATE]
    for note in fig.layout.annotations:
        note.visible = None
    fig.update_xaxes(visible=True)
    fig.update_yaxes(visible=True)


def training_curves(history: dict[str, list[tuple[int, float]]] | None = None, *,
                    log_x: bool = False, log_y: bool = False,
                    title: str | None = None, height: int = 520,
                    empty: str | None = None) -> go.Figure:
    """Train/test loss (top) and accuracy (bottom) against step.

    ``history`` maps metric names to ``[(step, value), ...]`` (as
    :meth:`workbench.store.RunStore.metric_history` returns); missing metrics give empty traces,
    so the trace order never changes. ``log_x`` puts steps on a log axis, ``log_y`` the loss.
    ``empty`` is the message shown instead of the axes while there is no point at all.
    """
    history = history or {}
    # markers make the first few evaluations visible; on long histories they only cost
    mode = "lines+markers" if sum(map(len, history.values())) < 800 else "lines"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.6, 0.4], subplot_titles=("loss", "accuracy"))
    fig.update_annotations(x=0, xanchor="left", font={"size": 13})  # titles left of the legend
    for name, row, colour, dash in CURVE_SERIES:
        points = history.get(name, [])
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                 mode=mode, name=name.replace("_", " "),
                                 line={"color": colour, "dash": dash, "width": 2},
                                 marker={"size": 4}),
                      row=row, col=1)
    fig.update_layout(height=height, margin={"l": 60, "r": 20, "t": 50 if title else 30, "b": 40},
                      template="plotly_white", title=title, uirevision="curves",
                      legend={"orientation": "h", "y": 1.02, "x": 0.12, "xanchor": "left",
                              "yanchor": "bottom"})
    fig.update_yaxes(range=[-0.02, 1.02], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=1)
    set_log_axes(fig, log_x=log_x, log_y=log_y)
    if empty and not any(history.get(name) for name in CURVE_NAMES):
        empty_state(fig, empty)
    return fig


def axis_types(*, log_x: bool, log_y: bool) -> dict[str, str]:
    """Layout axis name → axis type for the curves (steps on both x axes, loss on y)."""
    x_type = "log" if log_x else "linear"
    return {"xaxis": x_type, "xaxis2": x_type, "yaxis": "log" if log_y else "linear"}


def set_log_axes(fig, *, log_x: bool, log_y: bool) -> None:
    """Switch the curves' step axes and loss axis between linear and log (in place)."""
    fig.update_layout({axis: {"type": t} for axis, t in axis_types(log_x=log_x,
                                                                  log_y=log_y).items()})


def rows_to_series(rows) -> dict[str, tuple[list[int], list[float]]]:
    """Metric rows ``(row_id, step, name, value)`` → ``{name: (steps, values)}`` for the curves."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for _, step, name, value in rows:
        if name in CURVE_NAMES and math.isfinite(value):
            xs, ys = out.setdefault(name, ([], []))
            xs.append(step)
            ys.append(value)
    return out


def progress_text(step: int, total: int, eta_seconds: float | None) -> str:
    """``"120 / 150 steps (80%) · ETA 12 s"``: the label under the progress bar."""
    pct = 100.0 * step / total if total else 0.0
    text = f"{step:,} / {total:,} steps ({pct:.0f}%)"
    if eta_seconds is not None:
        text += f" · ETA {format_duration(eta_seconds)}"
    return text


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {(seconds % 3600) // 60:02.0f} min"
