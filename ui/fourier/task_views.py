"""Results section of the Fourier page for sparse-parity and group-composition runs: a summary
table, a checkpoint slider and the figures of :mod:`ui.fourier.task_figures`, drawn from the
cached ``workbench fourier RUN --checkpoint all --json`` payload.

:mod:`ui.fourier.run_page` owns the job (compute, poll, reload) for every task and calls
:func:`task_results` once the series is cached; the slider callbacks here only re-read that
payload from the store (the whole analysis is in it, nothing is computed in the app).
"""

from __future__ import annotations

from dash import Input, Output, State, callback, dcc, html

from ui.fourier.task_figures import TASK_FIGURES, task_figures
from ui.state import get_store
from workbench.fourier.views import checkpoint_report

GRAPH = {"displaylogo": False}
SLIDER = {"sparse-parity": "fxt-step-parity", "group-composition": "fxt-step-group"}
# figures drawn two to a row (the rest take a full row)
PAIRED = {"sparse-parity": (("parity-set", "neuron-shares"),), "group-composition": ()}


def _fmt(v, digits=3):
    return "–" if v is None else (f"{v:.{digits}g}" if isinstance(v, float) else str(v))


def _set(items) -> str:
    return "{" + ", ".join(str(i) for i in items) + "}" if items is not None else "–"


def summary_rows(series: dict) -> list[tuple[str, str]]:
    """(label, value) rows of the final checkpoint, per task."""
    final = checkpoint_report(series)
    if series.get("task") == "sparse-parity":
        return [("bits n / parity size k", f"{final.get('n')} / {final.get('k')}"),
                ("true support", _set(series.get("true_support"))),
                ("parity set from the weights", _set(series.get("detected_support"))),
                ("first step recovered", _fmt(series.get("first_step_recovered"))),
                ("hidden progress", _fmt(final.get("hidden_progress"))),
                ("output share on the set", _fmt(final.get("output_parity_share"))),
                ("neurons on the set", _fmt(final.get("neurons_on_parity_set"))),
                ("test accuracy", _fmt(final.get("metric_test_acc"), 4))]
    return [("group / order", f"{final.get('group')} / {final.get('order')}"),
            ("key irreps (W_E)", ", ".join(series.get("key_irreps") or []) or "none"),
            ("W_E share in key irreps", _fmt(final.get("embedding_key_share"))),
            ("character fit r²", _fmt(final.get("character_fit_r2"))),
            ("train / test accuracy", f"{_fmt(final.get('train_accuracy'), 4)} / "
                                      f"{_fmt(final.get('test_accuracy'), 4)}")]


def _graph(name: str, fig) -> html.Div:
    return html.Div(dcc.Graph(id=f"fxt-{name}", figure=fig, config=GRAPH),
                    className="card grow")


def task_results(series: dict) -> html.Div:
    """The results section of a parity or group run (final checkpoint selected)."""
    task = series["task"]
    steps = [r["step"] for r in series.get("checkpoints", [])]
    last = len(steps) - 1
    figs = task_figures(series)
    rows, done = [], set()
    for name in TASK_FIGURES[task]:
        if name in done:
            continue
        pair = next((p for p in PAIRED[task] if name in p), None)
        members = pair if pair else (name,)
        done.update(members)
        rows.append(html.Div([_graph(n, figs[n]) for n in members], className="row"))
    marks = {i: (f"{s:,}" if i in (0, last) or len(steps) <= 12 else "")
             for i, s in enumerate(steps)}
    final = checkpoint_report(series)
    return html.Div([
        html.Div([html.H4(f"Final checkpoint (step {final.get('step')})"),
                  html.Table(html.Tbody([html.Tr([html.Th(k), html.Td(v)])
                                         for k, v in summary_rows(series)]),
                             className="table", id="fxt-summary")], className="card"),
        html.Div([
            html.Label("checkpoint"),
            html.Div(dcc.Slider(id=SLIDER[task], min=0, max=last, step=1, value=last,
                                marks=marks, included=False), style={"flex": "1"}),
            html.Span(f"step {steps[-1]:,}", id=f"{SLIDER[task]}-label"),
        ], className="card row", style={"alignItems": "center"}),
        *rows,
        dcc.Store(id="fxt-steps", data=steps),
    ])


def register_scrub_callbacks() -> None:
    """The slider callbacks of every task view. Called by the page module: Dash hands global
    callbacks to the first app that starts, and :func:`ui.app.load_pages` re-runs page modules
    (not helper modules like this one) for each app, so registering here at import would serve
    only the first app."""
    for task in TASK_FIGURES:
        _register_scrub(task)


def _register_scrub(task: str) -> None:
    names = TASK_FIGURES[task]

    @callback(*[Output(f"fxt-{n}", "figure") for n in names],
              Output(f"{SLIDER[task]}-label", "children"),
              Input(SLIDER[task], "value"), State("fxt-steps", "data"),
              State("fx-state", "data"), prevent_initial_call=True)
    def scrub(index, steps, data):
        series = get_store().get_result(data["run_id"], "fourier", "series")
        step = steps[int(index)]
        figs = task_figures(series, step)
        return (*[figs[n] for n in names], f"step {step:,}")

    scrub.__name__ = f"scrub_{task.replace('-', '_')}"


__all__ = ["SLIDER", "register_scrub_callbacks", "summary_rows", "task_results"]
