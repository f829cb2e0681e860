"""``/runs/<id>/probes``: a run's probe fits and knowledge results, read from the store.

Fits (``workbench probes fit``): the layer x position held-out heatmap beside the control
task, selectivity and the random-init model, the baselines per position (embedding layer,
random-init, chance) and, for a fit over a checkpoint series, the score over steps. Knowledge
(``workbench probes knowledge run``): per-attribute P-probe accuracy over anchors, the Q-probe
over the pretraining checkpoints, and across every knowledge result in the store the QA table
per augmentation / protocol and the Q-probe vs QA scatter. Every figure without data names the
command that makes it. Linked from the run page of any run holding such results."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from ui.components import run_or_not_found
from ui.probes.data import (FIT_COMMAND, KNOWLEDGE_COMMAND, Q_TRAINING_EMPTY,
                            SERIES_COMMAND, all_knowledge, fit_results, has_probe_results,
                            knowledge_results)
from ui.probes.figures import baseline_lines, fit_summary, group_fits, probe_heatmaps, \
    probe_series
from ui.probes.knowledge_figures import knowledge_summary, p_probe_curves, q_over_training, \
    q_vs_qa_scatter
from ui.probes.parts import qa_table_component
from ui.state import get_store

GRAPH = {"displaylogo": False}

def _applies(run) -> bool:
    try:
        return has_probe_results(get_store(), run)
    except RuntimeError:  # outside a request: no store to ask
        return False


dash.register_page(__name__, path_template="/runs/<run_id>/probes", name="Probes",
                   title="Probes · workbench", analysis=_applies)


def fit_figures(store, run_id: str, pick: str | None):
    """(heatmap, baselines, series, summary) of the fit group whose first key is ``pick``
    (default: the first group)."""
    groups = group_fits(fit_results(store, run_id))
    group = next((g for g in groups if g.keys[0] == pick), groups[0] if groups else None)
    empty = f"no probe fit on this run yet: {FIT_COMMAND}"
    if group is None:
        return (probe_heatmaps(empty=empty), baseline_lines(empty=empty),
                probe_series(empty=empty), "")
    series_empty = f"one checkpoint only; for a series: {SERIES_COMMAND}"
    return (probe_heatmaps(group.latest), baseline_lines(group.latest),
            probe_series(group, empty=series_empty),
            (f"step {group.steps[-1]}: " if group.is_series else "") + fit_summary(group.latest))


def knowledge_figures(store, run_id: str, pick: str | None):
    """(P-probe curves, Q-probe over training, summary) of the knowledge result ``pick``."""
    results = knowledge_results(store, run_id)
    payload = results.get(pick) or (results[sorted(results)[0]] if results else None)
    if payload is None:
        empty = f"no knowledge result on this run: {KNOWLEDGE_COMMAND}"
        return p_probe_curves(empty=empty), q_over_training(empty=empty), ""
    return (p_probe_curves(payload), q_over_training(payload, empty=Q_TRAINING_EMPTY),
            knowledge_summary(payload))


def _fit_card(store, run_id):
    groups = group_fits(fit_results(store, run_id))
    heatmap, baselines, series, summary = fit_figures(store, run_id, None)
    return html.Div([
        html.H4("Probe fits: held-out score by site and position"),
        dcc.Dropdown(id="pb-fit-pick", options=[{"label": g.label, "value": g.keys[0]}
                                                for g in groups],
                     value=groups[0].keys[0] if groups else None, clearable=False,
                     style={"width": "640px"}),
        html.Div(summary, id="pb-fit-summary", className="muted"),
        dcc.Graph(id="pb-heatmap", figure=heatmap, config=GRAPH),
        html.Div([html.Div(dcc.Graph(id="pb-baselines", figure=baselines, config=GRAPH),
                           className="grow"),
                  html.Div(dcc.Graph(id="pb-series", figure=series, config=GRAPH),
                           className="grow")], className="row"),
    ], className="card")


def _knowledge_card(store, run_id):
    keys = sorted(knowledge_results(store, run_id))
    p_curves, q_train, summary = knowledge_figures(store, run_id, None)
    entries = all_knowledge(store)
    scatter_empty = f"no knowledge results in the store yet: {KNOWLEDGE_COMMAND}"
    return html.Div([
        html.H4("Knowledge storage"),
        dcc.Dropdown(id="pb-k-pick", options=keys, value=keys[0] if keys else None,
                     clearable=False, style={"width": "640px"}),
        html.Div(summary, id="pb-k-summary", className="muted"),
        html.Div([html.Div(dcc.Graph(id="pb-pprobe", figure=p_curves, config=GRAPH),
                           className="grow"),
                  html.Div(dcc.Graph(id="pb-qtrain", figure=q_train, config=GRAPH),
                           className="grow")], className="row"),
        html.H4("Held-out QA accuracy, every knowledge result in the store"),
        qa_table_component(entries, current=run_id),
        dcc.Graph(id="pb-qscatter", figure=q_vs_qa_scatter(entries, empty=scatter_empty),
                  config=GRAPH),
    ], className="card")


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("probes", "/probes"))
    if not_found is not None:
        return not_found
    cards = [_fit_card(store, run.id), _knowledge_card(store, run.id)]
    return html.Div([
        html.H2([run.name or run.id, " · probes"]),
        html.Div([dcc.Link("run page", href=f"/runs/{run.id}"), " · ",
                  dcc.Link("all probe results", href="/probes")], className="muted"),
        html.Div(run.id, id="pb-run-id", style={"display": "none"}),
        # the results this run holds first: a pretrain run's knowledge above its empty fits
        *(cards if fit_results(store, run.id) or not knowledge_results(store, run.id)
          else cards[::-1]),
    ])


@callback(Output("pb-heatmap", "figure"), Output("pb-baselines", "figure"),
          Output("pb-series", "figure"), Output("pb-fit-summary", "children"),
          Input("pb-fit-pick", "value"), Input("pb-run-id", "children"),
          prevent_initial_call=True)
def show_fit(pick, run_id):
    return fit_figures(get_store(), run_id, pick)


@callback(Output("pb-pprobe", "figure"), Output("pb-qtrain", "figure"),
          Output("pb-k-summary", "children"), Input("pb-k-pick", "value"),
          Input("pb-run-id", "children"), prevent_initial_call=True)
def show_knowledge(pick, run_id):
    return knowledge_figures(get_store(), run_id, pick)
