"""Figure factories of the Fourier analysis of sparse-parity and group-composition runs, shared
by the browser page (:mod:`ui.fourier.task_views`) and the notebook widget
(:mod:`ui.fourier.widgets`).

Each is a pure function of the cached ``workbench fourier RUN --checkpoint all --json`` payload
(:func:`workbench.fourier.task_runs.analyze_task_run`) or of one checkpoint report in it, and
returns a ``plotly.graph_objects.Figure``; nothing here computes what that payload lacks.

- sparse parity (Walsh analysis, Barak et al. 2022): the top Walsh coefficients of the network's
  output function labelled by subset (the true support highlighted) with the power per degree;
  the per-coordinate norms of the effective input weights (the parity set found from the weights
  alone, true support highlighted); per-neuron shares on the detected set; hidden progress and
  the related measures over checkpoints.
- group composition: the variance share per irreducible representation of ``W_E``, ``W_U``,
  ``W_L`` and the logits, key irreps highlighted; key share, character fit and accuracy over
  checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.fourier.figures import KEY_COLOUR, OTHER_COLOUR, _layout
from workbench.errors import UserError

TASK_FIGURES = {"sparse-parity": ("walsh", "parity-set", "neuron-shares", "hidden-progress"),
                "group-composition": ("irreps", "group-measures")}
DETECTED_COLOUR = "#ff7f0e"
# (report field, legend label) of the decompositions drawn by irrep_share_bars, in trace order
DECOMPOSITIONS = (("embedding_irreps", "W_E (embedding)"), ("unembedding_irreps", "W_U"),
                  ("w_l_irreps", "W_L = W_out W_U"), ("logit_irreps", "logits"))
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


def subset_label(subset: Sequence[int]) -> str:
    """``{3, 5}`` for a Walsh subset, ``∅`` for the constant term."""
    return "{" + ", ".join(str(i) for i in subset) + "}" if subset else "∅"


def _measure_lines(series: dict, fields) -> go.Figure:
    """One line per ``(field, label)`` present in the checkpoint reports, over steps."""
    reports = series.get("checkpoints") or []
    fig = go.Figure()
    for (field, label), colour in zip(fields, PALETTE):
        xs, ys = _steps_and(reports, field)
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines+markers",
                                     marker={"size": 5}, line={"color": colour}))
    return fig


def _measure_axes(fig: go.Figure, step: int | None, revision: str) -> None:
    """Fractions over steps: a marker at the selected ``step``, a [0, 1] axis, legend on top."""
    if step is not None:
        fig.add_vline(x=step, line={"color": "black", "width": 2})
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(range=[-0.02, 1.05])
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      uirevision=revision)


def _steps_and(reports: list[dict], field: str) -> tuple[list[int], list]:
    rows = [r for r in reports if r.get(field) is not None and r.get("step") is not None]
    return [r["step"] for r in rows], [r[field] for r in rows]


# -- sparse parity --------------------------------------------------------------------------
def walsh_bars(report: dict, *, height: int = 380) -> go.Figure:
    """Top Walsh coefficients ``f^(S)`` of the output function (``logit("1") - logit("0")``),
    labelled by subset ``S``; the true support red. Right: the power per degree ``|S|``."""
    spectrum = report.get("output_spectrum") or {}
    top = spectrum.get("top") or []
    truth = sorted(report.get("true_support") or [])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.1,
                        subplot_titles=("top coefficients f̂(S)", "power by degree |S|"))
    fig.update_annotations(font={"size": 12})
    fig.add_trace(go.Bar(x=[subset_label(t["set"]) for t in top],
                         y=[t["coefficient"] for t in top], name="f̂(S)",
                         marker={"color": [KEY_COLOUR if sorted(t["set"]) == truth else
                                           OTHER_COLOUR for t in top]},
                         hovertemplate="S = %{x}<br>f̂(S) = %{y:.4g}<extra></extra>"),
                  row=1, col=1)
    power = spectrum.get("power_by_degree") or []
    k = report.get("k")
    fig.add_trace(go.Bar(x=list(range(len(power))), y=power, name="power",
                         marker={"color": [KEY_COLOUR if d == k else OTHER_COLOUR
                                           for d in range(len(power))]},
                         hovertemplate="|S| = %{x}<br>share %{y:.3g}<extra></extra>"),
                  row=1, col=2)
    fig.update_xaxes(type="category", title_text="subset S", row=1, col=1)
    fig.update_xaxes(title_text="degree", dtick=1, row=1, col=2)
    fig.update_layout(showlegend=False)
    exact = "exact" if report.get("exact") else "sampled"
    title = (f"step {report.get('step')} · output Walsh spectrum ({exact}) · true set "
             f"{subset_label(truth)} share {report.get('output_parity_share', 0):.3f}")
    return _layout(fig, height, title, top=70)


def parity_set_bars(report: dict, *, height: int = 340) -> go.Figure:
    """Column norms of the effective first-layer input weights per input bit: the parity set
    read off the weights alone (outlined orange), the true support red."""
    scores = report.get("coordinate_scores") or []
    truth = set(report.get("true_support") or [])
    detected = set(report.get("detected_support") or [])
    fig = go.Figure(go.Bar(
        x=list(range(len(scores))), y=scores, name="input-weight norm",
        marker={"color": [KEY_COLOUR if i in truth else OTHER_COLOUR
                          for i in range(len(scores))],
                "line": {"color": [DETECTED_COLOUR if i in detected else "rgba(0,0,0,0)"
                                   for i in range(len(scores))], "width": 3}},
        customdata=[("true support" if i in truth else "off support") +
                    (" · detected" if i in detected else "") for i in range(len(scores))],
        hovertemplate="bit %{x}: %{y:.4g}<br>%{customdata}<extra></extra>"))
    fig.update_xaxes(title_text="input bit", dtick=1)
    fig.update_yaxes(title_text="effective weight norm")
    found = "recovered" if report.get("support_recovered") else "not recovered"
    title = (f"step {report.get('step')} · parity set from the weights: "
             f"{subset_label(sorted(detected))} ({found}, margin "
             f"{report.get('detection_margin', 0):.2f}) · hidden progress "
             f"{report.get('hidden_progress', 0):.3f}")
    return _layout(fig, height, title)


def neuron_shares(report: dict, *, threshold: float = 0.5, height: int = 340) -> go.Figure:
    """Per neuron, sorted: the share of its Walsh power on subsets of the detected parity set,
    for its input weights alone (``ReLU(w_eff . z + b)``) and for its actual activation."""
    fig = go.Figure()
    for field, label, colour in (("weight_parity_share", "input weights", KEY_COLOUR),
                                 ("neuron_parity_share", "activation", "#1f77b4")):
        values = sorted((v for v in report.get(field) or [] if v is not None), reverse=True)
        fig.add_trace(go.Scatter(x=list(range(len(values))), y=values, name=label,
                                 mode="lines", line={"color": colour}))
    fig.add_hline(y=threshold, line={"dash": "dash", "color": "#7f7f7f"})
    fig.update_xaxes(title_text="neurons (sorted)")
    fig.update_yaxes(title_text="share on the parity set", range=[0, 1.02])
    fig.update_layout(legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0.5})
    title = (f"step {report.get('step')} · neurons on the parity set: "
             f"{report.get('neurons_on_parity_set', 0):.3f}")
    return _layout(fig, height, title, top=70)


def hidden_progress_curve(series: dict, step: int | None = None, *,
                          height: int = 380) -> go.Figure:
    """Hidden progress (weight mass on the true support), the output's share on the parity set,
    the share of neurons on it and the test accuracy over checkpoints; a marker at ``step`` and
    a dashed line at the first checkpoint whose weights give the true support."""
    fig = _measure_lines(series, (("hidden_progress", "hidden progress"),
                                  ("output_parity_share", "output share on the set"),
                                  ("neurons_on_parity_set", "neurons on the set"),
                                  ("metric_test_acc", "test accuracy"),
                                  ("metric_train_acc", "train accuracy")))
    first = series.get("first_step_recovered")
    if first is not None:
        fig.add_vline(x=first, line={"dash": "dash", "color": DETECTED_COLOUR},
                      annotation_text="set recovered", annotation_position="top left")
    _measure_axes(fig, step, "hidden-progress")
    return _layout(fig, height, "Hidden progress over checkpoints", top=80)


# -- group composition ----------------------------------------------------------------------
def irrep_names(report: dict) -> list[str]:
    """Irrep names in payload order (from the embedding's decomposition)."""
    for field, _ in DECOMPOSITIONS:
        irreps = (report.get(field) or {}).get("irreps")
        if irreps:
            return [i["name"] for i in irreps]
    return []


def irrep_share_bars(report: dict, *, height: int = 400) -> go.Figure:
    """Variance share per irreducible representation for each decomposition in the report
    (embedding, unembedding, ``W_L``, logits where present); the decomposition's own key irreps
    outlined red, the embedding's key irreps starred on the axis."""
    names = irrep_names(report)
    key = set(report.get("key_irreps") or [])
    fig = go.Figure()
    for (field, label), colour in zip(DECOMPOSITIONS, PALETTE):
        decomp = report.get(field)
        if not decomp or not decomp.get("irreps"):
            continue
        shares = {i["name"]: i["share"] for i in decomp["irreps"]}
        own = set(decomp.get("key_irreps") or [])
        fig.add_trace(go.Bar(
            x=names, y=[shares.get(n, 0.0) for n in names], name=label,
            marker={"color": colour,
                    "line": {"color": [KEY_COLOUR if n in own else "rgba(0,0,0,0)"
                                       for n in names], "width": 3}},
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>"))
    dims = {}
    for field, _ in DECOMPOSITIONS:
        for i in (report.get(field) or {}).get("irreps") or []:
            dims.setdefault(i["name"], i.get("dim"))
    fig.update_xaxes(tickmode="array", tickvals=names,
                     ticktext=[("★ " if n in key else "") + f"{n} (dim {dims.get(n)})"
                               for n in names])
    fig.update_yaxes(title_text="variance share", range=[0, 1.02])
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.0,
                                               "yanchor": "bottom", "x": 0.0})
    keys = ", ".join(sorted(key)) or "none"
    title = (f"step {report.get('step')} · {report.get('group', 'group')} irrep shares · "
             f"key irreps {keys}")
    return _layout(fig, height, title, top=80)


def group_measures(series: dict, step: int | None = None, *, height: int = 380) -> go.Figure:
    """The embedding's share in its key irreps, the character fit r² and the train / test
    accuracy over checkpoints, with a marker at ``step``."""
    fig = _measure_lines(series, (("embedding_key_share", "W_E share in key irreps"),
                                  ("character_fit_r2", "character fit r²"),
                                  ("train_accuracy", "train accuracy"),
                                  ("test_accuracy", "test accuracy")))
    _measure_axes(fig, step, "group-measures")
    return _layout(fig, height, "Irrep measures over checkpoints", top=80)


# -- per task -------------------------------------------------------------------------------
def task_figures(series: dict, step: int | None = None) -> dict[str, go.Figure]:
    """Every figure of the run's task (names as in :data:`TASK_FIGURES`) at checkpoint ``step``
    (the last when None or absent)."""
    reports = series.get("checkpoints") or []
    report = next((r for r in reports if r.get("step") == step), reports[-1] if reports else {})
    step = report.get("step")
    task = series.get("task")
    if task == "sparse-parity":
        return {"walsh": walsh_bars(report), "parity-set": parity_set_bars(report),
                "neuron-shares": neuron_shares(report),
                "hidden-progress": hidden_progress_curve(series, step)}
    if task == "group-composition":
        return {"irreps": irrep_share_bars(report), "group-measures": group_measures(series, step)}
    raise UserError(f"no task figures for task {task!r}")


__all__ = ["DECOMPOSITIONS", "TASK_FIGURES", "group_measures", "hidden_progress_curve",
           "irrep_names", "irrep_share_bars", "neuron_shares", "parity_set_bars",
           "subset_label", "task_figures", "walsh_bars"]
