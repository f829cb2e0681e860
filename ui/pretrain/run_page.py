"""``/runs/<id>/pretrain``: a pretraining run's live train / validation loss, tokens/s and MFU
(polled from the store: only rows newer than the last seen, appended with a ``Patch``, so a
reload re-attaches), its device, progress, checkpoint series (Hugging Face directories) and the
analyses that take it."""

from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, callback, dcc, html
from flask import current_app

from ui.components import run_or_not_found, status_badge
from ui.figures import progress_text
from ui.polling import poll_run
from ui.pretrain.figures import PRETRAIN_NAMES, device_text, pretrain_curves, \
    rows_to_pretrain_series
from ui.state import get_store

dash.register_page(__name__, path_template="/runs/<run_id>/pretrain", name="Pretraining",
                   title="Pretraining · workbench", analysis=lambda run: run.kind == "pretrain")


def _device(store, run_id):
    return device_text(store.get_result(run_id, "pretrain", "device"))


def _checkpoints(store, run_id):
    arts = [a for a in store.artifacts(run_id, "checkpoint") if a.step is not None]
    if not arts:
        return html.Div("no checkpoints yet", className="muted")
    layout = store.layout(run_id)
    return html.Ul([html.Li([f"step {a.step:,} ", html.Span(str(layout.model_dir(a.step)),
                                                            className="muted")])
                    for a in arts], id="pt-checkpoint-list")


def _analyses(run):
    ref = run.name or run.id
    return html.Ul([
        html.Li(dcc.Link("run page", href=f"/runs/{run.id}")),
        html.Li(html.Code(f"workbench fourier numbers --model {ref}")),
        html.Li(html.Code("workbench circuits discover --model "
                          "<checkpoint directory> --task PAIRS.jsonl")),
        html.Li(html.Code(f"workbench.load_run({ref!r}).model(step)")),
    ])


def _progress(p) -> str:
    total = p.total_steps or 0
    if p.run.status == "completed":
        return progress_text(total, total, None) + " · done"
    text = progress_text(p.last_step, total, None) if total else ""
    return text + ("" if not p.finished else f" · {p.run.status}")


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("pretraining", "/pretrain"))
    if not_found is not None:
        return not_found
    p = poll_run(store, run.id)
    series = rows_to_pretrain_series(p.rows)
    history = {k: list(zip(*v)) for k, v in series.items()}
    state = {"run_id": run.id, "last_id": p.last_id, "last_step": p.last_step,
             "empty": not history}
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2([run.name or run.id, " ", status_badge(run.status, id="pt-status")]),
        html.Div(_device(store, run.id), id="pt-device", className="muted"),
        html.Div(_progress(p), id="pt-progress", className="muted"),
        html.Div([
            html.Div(dcc.Graph(id="pt-curves", config={"displaylogo": False},
                               figure=pretrain_curves(history, empty="no metrics yet: they "
                                                      "appear every log_every steps")),
                     className="card grow"),
            html.Div([html.H4("Checkpoints"),
                      html.Div(_checkpoints(store, run.id), id="pt-checkpoints"),
                      html.H4("Analyses"), _analyses(run)],
                     className="card", style={"flex": "0 1 420px"}),
        ], className="row"),
        dcc.Store(id="pt-poll-state", data=state),
        dcc.Interval(id="pt-poll", interval=poll_ms, disabled=p.finished),
    ])


@callback(Output("pt-curves", "figure"), Output("pt-status", "children"),
          Output("pt-status", "className"), Output("pt-progress", "children"),
          Output("pt-device", "children"), Output("pt-checkpoints", "children"),
          Output("pt-poll", "disabled"), Output("pt-poll-state", "data"),
          Input("pt-poll", "n_intervals"), State("pt-poll-state", "data"),
          prevent_initial_call=True)
def poll(_n, state):
    store = get_store()
    p = poll_run(store, state["run_id"], since_id=state["last_id"], last_step=state["last_step"])
    state = {**state, "last_id": p.last_id, "last_step": p.last_step}
    series = rows_to_pretrain_series(p.rows)
    figure = dash.no_update
    if series and state["empty"]:  # the first points: the whole figure, axes and all
        figure = pretrain_curves({k: list(zip(*v)) for k, v in series.items()})
        state["empty"] = False
    elif series:
        figure = Patch()
        for i, name in enumerate(PRETRAIN_NAMES):
            if name in series:
                figure["data"][i]["x"].extend(series[name][0])
                figure["data"][i]["y"].extend(series[name][1])
    return (figure, p.run.status, f"status status-{p.run.status}", _progress(p),
            _device(store, p.run.id), _checkpoints(store, p.run.id), p.finished, state)
