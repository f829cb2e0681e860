"""Circuit page of a run (``/runs/<run_id>/circuits``).

- A ``circuits`` run: live search progress (KL, sparsity vs target, λ; a ``dcc.Interval`` poll
  that reads only metric rows newer than the last row id it saw and extends the traces with a
  ``Patch``), then the circuit as a layered dash-cytoscape graph (positions computed in Python:
  embeddings at the bottom, logits at the top), a sparsity slider that re-extracts from the
  stored mask parameters without retraining, and a node panel: a tapped node's incoming and
  outgoing edges and the effect of ablating it (:func:`circuits.explore.ablate_node`).
- A trained model: the search form preset to that model, and the circuits already found on it.

Callbacks call only the circuits Python API (:mod:`circuits.explore`); the page is rebuilt from
the store on every load, so a reload re-attaches to a running search.
"""

from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, callback, dcc, html
from flask import current_app

from circuits.explore import ablate_node, circuit_runs, load_stored, node_edges, reextract
from ui.circuits.figures import (SEARCH_NAMES, circuit_layout, cytoscape_elements,
                                rows_to_search_series, search_progress)
from ui.components import run_or_not_found, status_badge
from ui.polling import TERMINAL_RUN, poll_run
from ui.circuits.parts import (edge_list, graph_component, holds_model, legend,
                                     search_form)
from ui.state import get_store
from workbench.errors import UserError
from workbench.jobs import job_for_run


def _applies(run) -> bool:
    return run.kind == "circuits" or holds_model(run)


dash.register_page(__name__, path_template="/runs/<run_id>/circuits", name="Circuits",
                   title="Circuits · workbench", analysis=_applies)


def _fmt(v, digits=4):
    return "–" if v is None else (f"{v:.{digits}g}" if isinstance(v, float) else str(v))


def _metrics_line(summary: dict | None) -> str:
    if not summary:
        return ""
    return (f"{summary.get('n_edges')} / {summary.get('total_edges')} edges · sparsity "
            f"{_fmt(summary.get('sparsity'))} · KL {_fmt(summary.get('kl'))} · accuracy "
            f"{_fmt(summary.get('accuracy'))} (full {_fmt(summary.get('full_accuracy'))}) · "
            f"exact match {_fmt(summary.get('exact_match'))}")


def _progress_label(run, step: int) -> str:
    total = ((run.config or {}).get("search") or {}).get("steps")
    text = f"step {step:,} / {total:,}" if total else f"step {step:,}"
    return f"{text} · {run.status}"


def _no_progress(run, finished: bool) -> str:
    if finished:
        return f"the search logged no progress ({run.status})"
    return "waiting for the search's first step (started by Launch search)"


def _graph_card(store, run_id: str):
    """Slider, graph and node panel for a finished search (or why there is none)."""
    try:
        stored = load_stored(run_id, store)
    except UserError as exc:
        return html.Div(str(exc), className="muted", id="cx-no-graph")
    circuit = stored.circuit
    total = stored.graph.n_edges
    sparsity = 1 - len(circuit.edges) / total
    graph, layout = graph_component(circuit)
    marks = {v: f"{v:g}" for v in (0, 0.25, 0.5, 0.75, 0.9, 1)}
    slider_note = ("re-extracts from the stored mask parameters" if stored.can_reextract else
                   f"{circuit.meta.get('method')} stores no masks: fixed at its sparsity")
    return html.Div([
        html.Div([
            html.Div([
                html.Label("sparsity"),
                html.Div(dcc.Slider(id="cx-slider", min=0, max=1, step=0.005,
                                    value=round(sparsity, 3), marks=marks,
                                    disabled=not stored.can_reextract,
                                    tooltip={"placement": "bottom"}),
                         style={"flex": "1"}),
            ], className="row", style={"alignItems": "center"}),
            html.Div([html.Span(f"{len(circuit.edges)} edges", id="cx-edge-count"),
                      f" of {total} · ", html.Span(slider_note, className="muted")]),
            legend(),
            graph,
        ], className="card grow"),
        html.Div([
            html.H4("Node"),
            html.Div("click a node in the graph", className="muted", id="cx-node-panel"),
            html.H4("Ablating it"),
            dcc.Loading(html.Div(id="cx-ablation", className="muted")),
            html.H4("Compare"),
            dcc.Link("compare with another circuit", href=f"/circuits?a={run_id}"),
        ], className="card", style={"flex": "0 1 360px"}),
    ], className="row")


def _circuit_run_layout(store, run):
    rows = store.metrics(run.id)
    series = rows_to_search_series(rows)
    history = {k: list(zip(*v)) for k, v in series.items()}
    last_id = rows[-1][0] if rows else 0
    step = max([r[1] for r in rows] or [0])
    job = job_for_run(run.id, store=store)
    finished = run.status in TERMINAL_RUN and (job is None or job.done)
    cfg = run.config or {}
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2([run.name or run.id, " ", status_badge(run.status, id="cx-status")]),
        html.Div(f"{cfg.get('method', '')} circuit · model {cfg.get('model')} · task "
                 f"{cfg.get('task')} · ablation "
                 f"{(cfg.get('search') or {}).get('ablation', '')}", className="muted"),
        html.Div(_metrics_line(run.summary), id="cx-metrics"),
        html.Div(run.message or "", className="form-error", id="cx-message"),
        html.Details([
            html.Summary(_progress_label(run, step), id="cx-progress-text"),
            dcc.Graph(id="cx-progress", figure=search_progress(
                history, empty=_no_progress(run, finished)),
                      config={"displaylogo": False}),
        ], open=not finished, className="card"),
        html.Div(_graph_card(store, run.id) if run.status == "completed" else
                 html.Div("the circuit appears here when the search finishes",
                          className="muted"), id="cx-graph-card"),
        dcc.Store(id="cx-state", data={"run_id": run.id, "last_id": last_id, "step": step,
                                       "empty": not series}),
        dcc.Store(id="cx-node"),
        dcc.Interval(id="cx-poll", interval=poll_ms, disabled=finished),
    ])


def _model_layout(store, run):
    found = circuit_runs(store, model=run.id)
    items = [html.Li([dcc.Link(r.name or r.id, href=f"/runs/{r.id}/circuits"), " ",
                      html.Span(f"{r.config.get('method')} · {r.task} · "
                                f"{_metrics_line(r.summary)}", className="muted")])
             for r in found]
    return html.Div([
        html.H2(f"Circuits of {run.name or run.id}"),
        html.Div(f"{run.id} · task {run.task}", className="muted"),
        html.Div([
            search_form(store, model=run.id),
            html.Div([html.H4("Circuits found on this model"),
                      html.Ul(items, id="cx-found") if items else
                      html.Div("none yet", className="muted", id="cx-found")],
                     className="card", style={"flex": "0 1 460px"}),
        ], className="row"),
    ])


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("all runs", "/"))
    if not_found is not None:
        return not_found
    if run.kind == "circuits":
        return _circuit_run_layout(store, run)
    if _applies(run):
        return _model_layout(store, run)
    return html.Div([html.H2("No circuits here"),
                     html.P(f"run {run.id} is a {run.kind} run without a model")])


@callback(Output("cx-progress", "figure"), Output("cx-progress-text", "children"),
          Output("cx-status", "children"), Output("cx-status", "className"),
          Output("cx-metrics", "children"), Output("cx-message", "children"),
          Output("cx-graph-card", "children"), Output("cx-poll", "disabled"),
          Output("cx-state", "data"),
          Input("cx-poll", "n_intervals"), State("cx-state", "data"),
          prevent_initial_call=True)
def poll(_n, state):
    store = get_store()
    polled = poll_run(store, state["run_id"], state["last_id"], state["step"])
    rows, run, job = polled.rows, polled.run, polled.job
    state = {**state, "last_id": polled.last_id, "step": polled.last_step}
    figure = dash.no_update
    series = rows_to_search_series(rows)
    if series and state.get("empty"):  # the first points: the whole figure, axes and all
        figure = search_progress({k: list(zip(*v)) for k, v in series.items()})
        state["empty"] = False
    elif series:
        figure = Patch()
        for i, name in enumerate(SEARCH_NAMES):
            if name in series:
                xs, ys = series[name]
                figure["data"][i]["x"].extend(xs)
                figure["data"][i]["y"].extend(ys)
    finished = polled.finished
    message = run.message or ""
    if job is not None and job.status == "failed" and not message:
        message = " / ".join(job.log_tail(3))
    card = _graph_card(store, run.id) if finished and run.status == "completed" \
        else dash.no_update
    return (figure, _progress_label(run, state["step"]), run.status,
            f"status status-{run.status}", _metrics_line(run.summary), message, card,
            finished, state)


@callback(Output("cx-graph", "elements"), Output("cx-edge-count", "children"),
          Input("cx-slider", "value"), State("cx-state", "data"), prevent_initial_call=True)
def resparsify(value, state):
    stored = load_stored(state["run_id"], get_store())
    if not stored.can_reextract:
        return dash.no_update, dash.no_update
    circuit = reextract(stored, float(value))
    return cytoscape_elements(circuit_layout(circuit)), f"{len(circuit.edges)} edges"


def _current(state, sparsity):
    stored = load_stored(state["run_id"], get_store())
    circuit = reextract(stored, float(sparsity)) if stored.can_reextract and \
        sparsity is not None else stored.circuit
    return stored, circuit


@callback(Output("cx-node-panel", "children"), Output("cx-node", "data"),
          Input("cx-graph", "tapNodeData"), State("cx-slider", "value"),
          State("cx-state", "data"), prevent_initial_call=True)
def node_tapped(data, sparsity, state):
    if not data:
        return dash.no_update, dash.no_update
    node = data["id"]
    _, circuit = _current(state, sparsity)
    incoming, outgoing = node_edges(circuit, node)
    panel = html.Div([html.Div(html.B(node), id="cx-node-name"),
                      edge_list("incoming", incoming, "cx-in-edges"),
                      edge_list("outgoing", outgoing, "cx-out-edges")])
    return panel, {"node": node, "sparsity": sparsity}


@callback(Output("cx-ablation", "children"), Input("cx-node", "data"),
          State("cx-state", "data"), prevent_initial_call=True)
def node_ablation(selected, state):
    if not selected or selected["node"] == "logits":
        return "ablating the output is not defined"
    stored, circuit = _current(state, selected.get("sparsity"))
    try:
        res = ablate_node(stored, selected["node"], circuit=circuit, store=get_store())
    except UserError as exc:
        return str(exc)
    return html.Table([html.Tbody([
        html.Tr([html.Th(""), html.Th("KL(full ‖ ·)"), html.Th("accuracy")]),
        html.Tr([html.Td("full model"), html.Td("0"), html.Td(_fmt(res.full_accuracy, 3))]),
        html.Tr([html.Td("full − node"), html.Td(_fmt(res.full_kl)),
                 html.Td(_fmt(res.full_ablated_accuracy, 3))]),
        html.Tr([html.Td("circuit"), html.Td(_fmt(res.circuit_kl)),
                 html.Td(_fmt(res.circuit_accuracy, 3))]),
        html.Tr([html.Td("circuit − node"), html.Td(_fmt(res.circuit_ablated_kl)),
                 html.Td(_fmt(res.circuit_ablated_accuracy, 3))]),
    ])], id="cx-ablation-table", className="table")
