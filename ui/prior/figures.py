"""Prior-localisation figures and tables, from the stored payloads only (a ``PriorResult`` /
``FinetuneResult`` as JSON; see :mod:`ui.prior.results`): accuracy by prior bin beside the
instruction baseline, error vs log prior per answer value, held-out R² of the prior by layer and
position against the shuffled control with the localised layers marked, and the before / after
comparison of the finetune. Plain Plotly, no Dash: used by the run page and the widget.

Every factory takes ``None`` for "no data yet" and then shows ``empty`` (the command that makes
the data) instead of axes; trace order is fixed, so a test or a widget can find trace ``i``.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures import empty_state

BINS = ("common", "medium", "rare")
BIN_COLOURS = {"common": "#1f77b4", "medium": "#ff7f0e", "rare": "#2ca02c"}
COMPARISON = ("before", "instruction_baseline", "localised", "other_layers", "all_layers")
COMPARISON_COLOURS = ("#7f7f7f", "#bcbd22", "#d62728", "#1f77b4", "#9467bd")
POSITION_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
# r2 grids of a PriorResult by split: (real, shuffled control, how the control is shuffled)
SPLITS = {"prompts": ("r2", "shuffled_r2", "prior shuffled across prompts"),
          "values": ("r2_held_out_values", "shuffled_r2_held_out_values",
                     "test answer values unseen; prior shuffled across values")}


def _layout(fig, title, height):
    fig.update_layout(title=title, height=height, template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def fmt(v, digits=3) -> str:
    return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def correlation_text(c: dict | None) -> str:
    """``"Spearman ρ 0.41 (95% CI 0.22 .. 0.57)"`` of a stored correlation."""
    if not c:
        return "Spearman ρ –"
    return f"Spearman ρ {fmt(c.get('rho'))} (95% CI {fmt(c.get('ci_low'))} .. " \
           f"{fmt(c.get('ci_high'))})"


def accuracy_by_bin(result: dict | None, *, height: int = 380,
                    empty: str | None = None) -> go.Figure:
    """Accuracy per prior bin without and with the "don't rely on your prior" instruction
    (traces 0 and 1; x: the bins the task has, with their mean log prior)."""
    result = result or {}
    plain = result.get("accuracy_by_bin") or {}
    instructed = result.get("instructed_accuracy_by_bin") or {}
    bins = [b for b in BINS if b in plain or b in instructed]
    labels = [f"{b}<br>log prior {fmt((plain.get(b) or instructed.get(b))['mean_log_prior'], 2)}"
              for b in bins]
    fig = go.Figure()
    for name, by_bin, colour, overall in (
            ("no instruction", plain, "#1f77b4", result.get("accuracy")),
            ("instruction baseline", instructed, "#bcbd22", result.get("instructed_accuracy"))):
        fig.add_trace(go.Bar(x=labels, y=[(by_bin.get(b) or {}).get("accuracy") for b in bins],
                             name=f"{name} (all {fmt(overall)})", marker_color=colour,
                             customdata=[(by_bin.get(b) or {}).get("n") for b in bins],
                             hovertemplate="%{x}<br>accuracy %{y:.3f}<br>n=%{customdata}"))
    fig.update_yaxes(range=[0, 1.02], title_text="accuracy")
    _layout(fig, "accuracy by prior bin", height)
    fig.update_layout(barmode="group")
    if empty and not bins:
        empty_state(fig, empty)
    return fig


def error_vs_prior(result: dict | None, *, height: int = 380,
                   empty: str | None = None) -> go.Figure:
    """Error rate against log prior, one point per answer value, one trace per bin (in
    :data:`BINS` order); the title carries the stored Spearman ρ and its interval."""
    rows = (result or {}).get("values") or []
    fig = go.Figure()
    for b in BINS:
        mine = [r for r in rows if r.get("condition") == b]
        fig.add_trace(go.Scatter(
            x=[r["log_prior"] for r in mine], y=[1 - r["accuracy"] for r in mine],
            mode="markers", name=b, marker={"color": BIN_COLOURS[b], "size": 9},
            text=[r["value"] for r in mine],
            customdata=[[r.get("n"), r.get("corpus_weight")] for r in mine],
            hovertemplate="answer %{text}<br>log prior %{x:.2f}<br>error %{y:.3f}"
                          "<br>n=%{customdata[0]} corpus weight %{customdata[1]}"))
    fig.update_xaxes(title_text="log prior of the answer (the model's, without the instruction)")
    fig.update_yaxes(title_text="error rate", range=[-0.02, 1.02])
    title = "error vs prior"
    if result:
        title += " · " + correlation_text(result.get("correlation"))
    _layout(fig, title, height)
    if empty and not rows:
        empty_state(fig, empty)
    return fig


def r2_by_layer(result: dict | None, *, split: str = "prompts", height: int = 420,
                empty: str | None = None) -> go.Figure:
    """Held-out R² of the log prior by site, one solid line per probed position, its shuffled
    control dotted beside it (traces ``2i``, ``2i+1``), and the localised blocks' output sites
    marked (last trace)."""
    assert split in SPLITS, split
    real_key, control_key, control_note = SPLITS[split]
    result = result or {}
    sites, positions = result.get("sites") or [], result.get("positions") or []
    real, control = result.get(real_key) or [], result.get(control_key) or []
    fig = go.Figure()
    for j, pos in enumerate(positions):
        colour = POSITION_COLOURS[j % len(POSITION_COLOURS)]
        fig.add_trace(go.Scatter(x=sites, y=[row[j] for row in real], mode="lines+markers",
                                 name=f"R² at position {pos}", line={"color": colour}))
        fig.add_trace(go.Scatter(x=sites, y=[row[j] for row in control], mode="lines+markers",
                                 name=f"shuffled control, position {pos}",
                                 line={"color": colour, "dash": "dot"}, marker={"size": 4}))
    marked = [f"resid.{b + 1}" for b in result.get("localised_layers") or []]
    last = len(positions) - 1
    fig.add_trace(go.Scatter(
        x=[s for s in marked if s in sites],
        y=[real[sites.index(s)][last] for s in marked if s in sites and real],
        mode="markers", name="localised (block output)",
        marker={"symbol": "star", "size": 16, "color": "#d62728"},
        hovertemplate="%{x}: localised<extra></extra>"))
    fig.update_xaxes(title_text="residual stream site (resid.b+1 = output of block b)",
                     type="category")
    fig.update_yaxes(title_text="held-out R² of the log prior")
    how = "split by prompt" if split == "prompts" else "split by answer value"
    title = f"R² of the prior by layer ({how}; control: {control_note})"
    _layout(fig, title, height)
    if empty and not sites:
        empty_state(fig, empty)
    return fig


def comparison_label(key: str, result: dict) -> str:
    if key == "localised":
        return f"localised {result.get('layers')}"
    if key == "other_layers":
        return f"other layers {result.get('control_layers')}"
    return key.replace("_", " ")


def comparison_rows(result: dict | None) -> list[dict]:
    """One row per evaluation of a finetune (:data:`COMPARISON` order, those present)."""
    result = result or {}
    rows = []
    for key in COMPARISON:
        r = result.get(key)
        if not isinstance(r, dict):
            continue
        c = r.get("correlation") or {}
        rows.append({"key": key, "label": comparison_label(key, result),
                     "held_out_accuracy": r.get("held_out_accuracy"),
                     "accuracy": r.get("accuracy"), "rho": c.get("rho"),
                     "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high")})
    return rows


def finetune_comparison(result: dict | None, *, height: int = 400,
                        empty: str | None = None) -> go.Figure:
    """Held-out accuracy (left, trace 0) and Spearman ρ error vs prior with its 95% interval
    (right, trace 1) for before / instruction baseline / localised / other layers / all layers
    at the same step budget."""
    rows = comparison_rows(result)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "held-out accuracy (answer values never trained on)", "Spearman ρ, error vs prior"))
    labels = [r["label"] for r in rows]
    colours = [COMPARISON_COLOURS[COMPARISON.index(r["key"])] for r in rows]
    fig.add_trace(go.Bar(x=labels, y=[r["held_out_accuracy"] for r in rows],
                         marker_color=colours, name="held-out accuracy", showlegend=False),
                  row=1, col=1)
    rho = [r["rho"] for r in rows]
    up = [None if r["ci_high"] is None or r["rho"] is None else r["ci_high"] - r["rho"]
          for r in rows]
    down = [None if r["ci_low"] is None or r["rho"] is None else r["rho"] - r["ci_low"]
            for r in rows]
    fig.add_trace(go.Scatter(x=labels, y=rho, mode="markers", name="Spearman ρ",
                             marker={"color": colours, "size": 12}, showlegend=False,
                             error_y={"type": "data", "array": up, "arrayminus": down,
                                      "symmetric": False}), row=1, col=2)
    fig.add_hline(y=0, line={"color": "#9ca3af", "width": 1}, row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=2)
    steps = ((result or {}).get("config") or {}).get("steps")
    _layout(fig, "before / after finetuning" + (f" ({steps} steps each)" if steps else ""),
            height)
    fig.update_layout(margin={"t": 90})  # the title above the two subplot titles
    if empty and not rows:
        empty_state(fig, empty)
    return fig


def summary_lines(result: dict | None) -> list[str]:
    """The analysis in a few lines (what the CLI prints first), for headers and status."""
    if not result:
        return []
    c = result.get("correlation") or {}
    sig = {True: "significant", False: "not significant"}.get(c.get("significant"), "")
    return [f"task {result.get('task')}: accuracy {fmt(result.get('accuracy'))} over "
            f"{result.get('n_examples')} prompts; with the instruction "
            f"{fmt(result.get('instructed_accuracy'))}",
            f"error vs log prior: {correlation_text(c)}" + (f", {sig}" if sig else ""),
            f"localised blocks {result.get('localised_layers')}: {result.get('rule', '')}"]
