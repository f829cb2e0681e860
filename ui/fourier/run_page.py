"""Fourier page of a run (``/runs/<run_id>/fourier``): for modular arithmetic the
progress-measure analysis of Nanda et al. (2023); for sparse parity (Walsh spectra, hidden
progress) and group composition (irrep shares) the results section of
:mod:`ui.fourier.task_views`, under the same job controls.

The analysis (``workbench fourier RUN --checkpoint all --json``) runs as a job and is cached in
the store; the page starts it, shows its progress from a ``dcc.Interval`` poll, and draws the
figures once the cached series covers every checkpoint. Everything is read back from the store
on each load, so a reload re-attaches to a running analysis. A checkpoint slider scrubs through
training: the Fourier norms, the histogram, the neuron heatmap, the logit map and the marker on
the progress measures follow it. Callbacks call only the Python API
(:mod:`workbench.fourier.views`); figures come from :mod:`ui.fourier.figures`.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from ui.components import run_or_not_found, progress_bar
from ui.fourier.figures import (explained_histogram, logit_map, neuron_heatmap, norm_bars,
                                phase_curves, progress_measures)
from ui.fourier.task_views import register_scrub_callbacks, task_results
from ui.state import get_store, job_env
from workbench.errors import UserError
from workbench.fourier.task_runs import TASKS
from workbench.fourier.views import (analysis_state, applies, checkpoint_report,
                                     checkpoint_views, start_analysis)

dash.register_page(__name__, path_template="/runs/<run_id>/fourier", name="Fourier features",
                   title="Fourier · workbench", analysis=applies)

GRAPH = {"displaylogo": False}
_HIDDEN = {"display": "none"}


def _fmt(v, digits=3):
    return "–" if v is None else (f"{v:.{digits}g}" if isinstance(v, float) else str(v))


def _status_text(state) -> str:
    if state.running:
        p = state.progress or {}
        return (f"computing · checkpoint {p.get('done', 0)} / {p.get('total') or '?'} "
                f"(job {state.job.id})")
    if state.job is not None and state.job.status in ("failed", "cancelled"):
        return f"the analysis job {state.job.status}"
    if state.series is None:
        return "not computed yet"
    n = len(state.series.get("checkpoints", []))
    return (f"computed over {n} checkpoints" +
            (" · new checkpoints since: recompute to include them" if state.stale else ""))


def _summary(series: dict) -> html.Div:
    final = checkpoint_report(series)
    ph = series.get("phases") or {}
    rows = [("key frequencies", series.get("key_frequencies")),
            ("test accuracy", _fmt(final.get("test_accuracy"), 4)),
            ("W_E norm² in key frequencies", _fmt(final.get("embedding_key_fraction"))),
            ("neurons explained (> 0.85)", _fmt(final.get("neurons_explained_fraction"))),
            ("logit fit r²", _fmt(final.get("logit_fit_r2"))),
            ("full / restricted / excluded loss",
             f"{_fmt(final.get('full_loss'))} / {_fmt(final.get('restricted_loss'))} / "
             f"{_fmt(final.get('excluded_loss'))}"),
            ("Gini W_E / W_L", f"{_fmt(final.get('gini_embedding'))} / "
                               f"{_fmt(final.get('gini_unembedding'))}"),
            ("memorisation ends", _fmt(ph.get("memorisation_end"))),
            ("circuit formation ends", _fmt(ph.get("circuit_formation_end"))),
            ("cleanup ends", _fmt(ph.get("cleanup_end")))]
    return html.Div([html.H4(f"Final checkpoint (step {final.get('step')})"),
                     html.Table(html.Tbody([html.Tr([html.Th(k), html.Td(str(v))])
                                            for k, v in rows]), className="table",
                                id="fx-summary")])


def _neuron_options(report: dict) -> list[dict]:
    out = []
    for i, nf in enumerate(report.get("neuron_frequencies") or []):
        out.append({"label": f"{i} · k={nf['frequency']} · {nf['explained_fraction']:.2f}",
                    "value": i})
    return out


def _default_neuron(report: dict) -> int:
    nfs = report.get("neuron_frequencies") or []
    if not nfs:
        return 0
    return max(range(len(nfs)), key=lambda i: nfs[i]["explained_fraction"])


def _results(store, run_id: str, series: dict):
    if series.get("task") in TASKS:
        return task_results(series)
    history = store.metric_history(run_id)
    reports = series.get("checkpoints", [])
    steps = [r["step"] for r in reports]
    last = len(steps) - 1
    final = reports[-1]
    step_marks = {i: (f"{s:,}" if i in (0, last) or len(steps) <= 12 else "")
                  for i, s in enumerate(steps)}
    return html.Div([
        html.Div([
            html.Div([html.H4("Train / test (log axes) with the detected phases"),
                      dcc.Graph(id="fx-curves", figure=phase_curves(history,
                                                                   series.get("phases")),
                                config=GRAPH)], className="card grow"),
            html.Div(_summary(series), className="card", style={"flex": "0 1 380px"}),
        ], className="row"),
        html.Div([
            html.Label("checkpoint"),
            html.Div(dcc.Slider(id="fx-step", min=0, max=last, step=1, value=last,
                                marks=step_marks, included=False), style={"flex": "1"}),
            html.Span(f"step {steps[-1]:,}", id="fx-step-label"),
        ], className="card row", style={"alignItems": "center"}),
        html.Div([
            html.Div(dcc.Graph(id="fx-norms", figure=norm_bars(final), config=GRAPH),
                     className="card grow"),
            html.Div(dcc.Graph(id="fx-hist", figure=explained_histogram(
                [nf["explained_fraction"] for nf in final.get("neuron_frequencies", [])]),
                config=GRAPH), className="card grow"),
        ], className="row"),
        html.Div([
            html.Div([
                html.Div([html.Label("neuron", htmlFor="fx-neuron"),
                          dcc.Dropdown(id="fx-neuron", options=_neuron_options(final),
                                       value=_default_neuron(final), clearable=False,
                                       style={"width": "260px"})], className="row",
                         style={"alignItems": "center"}),
                dcc.Loading(dcc.Graph(id="fx-neuron-map", config=GRAPH)),
            ], className="card grow"),
            html.Div(dcc.Loading(dcc.Graph(id="fx-logit-map", config=GRAPH)),
                     className="card grow"),
        ], className="row"),
        html.Div([html.H4("Progress measures over checkpoints"),
                  dcc.Graph(id="fx-measures", figure=progress_measures(series, steps[-1]),
                            config=GRAPH)], className="card"),
        dcc.Store(id="fx-steps", data=steps),
    ])


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("all runs", "/"))
    if not_found is not None:
        return not_found
    if not applies(run):
        return html.Div([html.H2("No Fourier analysis here"),
                         html.P(f"run {run.id} is a {run.kind} run of task {run.task!r}; the "
                                f"page analyses training runs of modular arithmetic, sparse "
                                f"parity and group composition")])
    state = analysis_state(store, run.id)
    ready = state.series is not None and not state.running
    log = "\n".join(state.job.log_tail(8)) if state.job is not None and \
        state.job.status == "failed" else ""
    params = (run.config or {}).get("task_params") or {}
    shown = ", ".join(f"{k} = {v}" for k, v in params.items() if k in ("p", "n", "k", "group"))
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2(["Fourier features · ", dcc.Link(run.name or run.id, href=f"/runs/{run.id}")]),
        html.Div(f"{run.id} · task {run.task}" + (f" · {shown}" if shown else "") +
                 f" · status {run.status}", className="muted"),
        html.Div([
            html.Div([
                html.Div(progress_bar(state.fraction if state.running else
                                      (1.0 if ready else 0.0), ready, id_prefix="fx-progress"),
                         style={"flex": "1"}),
                html.Button("Recompute" if state.series is not None else "Compute",
                            id="fx-compute", className="btn", disabled=state.running),
            ], className="row", style={"alignItems": "center"}),
            html.Div(_status_text(state), id="fx-status", className="muted"),
            html.Pre(log, id="fx-log", className="log", style=None if log else _HIDDEN),
        ], className="card"),
        html.Div(_results(store, run.id, state.series) if ready else
                 html.Div("no analysis yet: press Compute (or run  workbench fourier "
                          f"{run.id} --checkpoint all) and the figures appear here",
                          className="muted", id="fx-empty"), id="fx-results"),
        dcc.Store(id="fx-state", data={"run_id": run.id, "ready": ready}),
        dcc.Interval(id="fx-poll", interval=poll_ms, disabled=not state.running),
    ])


@callback(Output("fx-poll", "disabled", allow_duplicate=True),
          Output("fx-status", "children", allow_duplicate=True),
          Output("fx-compute", "disabled", allow_duplicate=True),
          Input("fx-compute", "n_clicks"), State("fx-state", "data"), prevent_initial_call=True)
def compute(_clicks, data):
    try:
        job = start_analysis(get_store(), data["run_id"], env=job_env())
    except UserError as exc:
        return True, str(exc), False
    return False, f"computing · starting job {job.id}", True


@callback(Output("fx-progress-inner", "style"), Output("fx-progress-inner", "className"),
          Output("fx-status", "children"), Output("fx-log", "children"),
          Output("fx-log", "style"), Output("fx-compute", "disabled"),
          Output("fx-compute", "children"), Output("fx-poll", "disabled"),
          Output("fx-state", "data"),
          Input("fx-poll", "n_intervals"), State("fx-state", "data"), prevent_initial_call=True)
def poll(_n, data):
    # Kept cheap: a poll that outlives the interval is superseded by the next one and its
    # response dropped, so the figures are built by show_results once the state flips.
    state = analysis_state(get_store(), data["run_id"])
    if state.running:
        return ({"width": f"{100 * state.fraction:.1f}%"}, "progress-inner",
                _status_text(state), "", _HIDDEN, True, dash.no_update, False, dash.no_update)
    log = "\n".join(state.job.log_tail(8)) if state.job is not None and \
        state.job.status == "failed" else ""
    ready = state.series is not None and state.job is not None and state.job.status == \
        "completed"
    return ({"width": "100%" if ready else "0%"},
            "progress-inner" + (" done" if ready else ""), _status_text(state), log,
            None if log else _HIDDEN, False,
            "Recompute" if state.series is not None else "Compute", True,
            {**data, "ready": ready, "version": data.get("version", 0) + 1})


@callback(Output("fx-results", "children"), Input("fx-state", "data"),
          prevent_initial_call=True)
def show_results(data):
    if not data.get("ready"):
        return dash.no_update
    store = get_store()
    series = store.get_result(data["run_id"], "fourier", "series")
    return _results(store, data["run_id"], series) if series else dash.no_update


def _series(data):
    return get_store().get_result(data["run_id"], "fourier", "series")


@callback(Output("fx-norms", "figure"), Output("fx-hist", "figure"),
          Output("fx-measures", "figure"), Output("fx-neuron", "options"),
          Output("fx-step-label", "children"),
          Input("fx-step", "value"), State("fx-steps", "data"), State("fx-state", "data"),
          prevent_initial_call=True)
def scrub(index, steps, data):
    series = _series(data)
    step = steps[int(index)]
    report = checkpoint_report(series, step)
    fractions = [nf["explained_fraction"] for nf in report.get("neuron_frequencies", [])]
    return (norm_bars(report, series.get("key_frequencies")), explained_histogram(fractions),
            progress_measures(series, step), _neuron_options(report), f"step {step:,}")


@callback(Output("fx-neuron-map", "figure"), Input("fx-neuron", "value"),
          Input("fx-step", "value"), State("fx-steps", "data"), State("fx-state", "data"))
def neuron_map(neuron, index, steps, data):
    if neuron is None or not steps:
        return dash.no_update
    step = steps[int(index)]
    views = checkpoint_views(get_store(), data["run_id"], step)
    report = checkpoint_report(_series(data), step)
    nf = (report.get("neuron_frequencies") or [{}] * (int(neuron) + 1))[int(neuron)]
    return neuron_heatmap(views.neuron(int(neuron)), int(neuron), frequency=nf.get("frequency"),
                          fraction=nf.get("explained_fraction"))


@callback(Output("fx-logit-map", "figure"), Input("fx-step", "value"),
          State("fx-steps", "data"), State("fx-state", "data"))
def logit_map_at(index, steps, data):
    if not steps:
        return dash.no_update
    views = checkpoint_views(get_store(), data["run_id"], steps[int(index)])
    return logit_map(views.logit_map)


register_scrub_callbacks()  # per app: see its docstring
