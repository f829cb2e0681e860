"""Programs page (``/programs``): train a Transformer Program, follow training jobs, and open
trained programs.

The form (task, preset, seed, ``key=value`` settings — ``task.KEY`` for task parameters — and an
optional run name) is checked with the CLI's own rules (:func:`programs.inspect.train_request`);
an invalid form shows the error and starts nothing. A valid one starts ``workbench programs train
… --json`` as a detached job under a unique run name, and the page goes to that run's program
page (``/runs/<id>/program``) as soon as the job has created the run. The jobs card is read from
the store on every poll, so a reload or a server restart finds running jobs again.
"""

from __future__ import annotations

import json

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from programs.config import PRESETS, preset, preset_task_params
from programs.inspect import TASKS, parse_settings, train_request
from ui.components import progress_bar, status_badge
from ui.programs.parts import (argv_summary, epoch_progress,
                                     new_run_name, program_jobs, total_epochs)
from ui.programs.figures import progress_label
from ui.state import get_store, job_env
from workbench.errors import UserError
from programs.api import prepare_run
from workbench.jobs import start_job

dash.register_page(__name__, path="/programs", name="Programs", title="Programs · workbench")

DEFAULT_TASK, DEFAULT_PRESET = "reverse", "tiny"


def _preset_text(task: str, preset_name: str) -> str:
    try:
        cfg = preset(preset_name, task).to_dict()
    except UserError as exc:
        return str(exc)
    cfg |= {f"task.{k}": v for k, v in preset_task_params(preset_name, task).items()}
    return "  ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())


def _jobs_card(store):
    items = program_jobs(store)
    if not items:
        return html.Div("no program training jobs yet", className="muted")
    out = []
    for job, run in items:
        if run is None:
            label, fraction = progress_label(None, None, job.status), 0.0
            link = html.Span(job.argv[2] if len(job.argv) > 2 else job.id)
        else:
            _, _, epoch, loss = epoch_progress(store, run)
            total = total_epochs(run)
            label = progress_label(epoch, total, run.status, loss)
            fraction = 1.0 if run.status == "completed" else (epoch or 0) / (total or 1)
            link = dcc.Link(run.name or run.id, href=f"/runs/{run.id}/program")
        out.append(html.Li([
            html.Div([link, " ", status_badge(job.status), " ",
                      html.Span(argv_summary(job.argv), className="muted")]),
            progress_bar(fraction, fraction >= 1.0, id_prefix=f"pg-job-{job.id}"),
            html.Div(label, className="muted pg-job-label"),
        ], style={"marginBottom": "8px"}))
    return html.Ul(out, id="pg-jobs-list", style={"paddingLeft": "18px"})


def _runs_card(store):
    runs = [r for r in store.list_runs(kind="program") if r.status == "completed"]
    if not runs:
        return html.Div("no trained programs yet", className="muted")
    rows = []
    for r in runs[:50]:
        s = r.summary or {}
        acc = s.get("test_acc")
        rows.append(html.Tr([
            html.Td(dcc.Link(r.name or r.id, href=f"/runs/{r.id}/program")), html.Td(r.task),
            html.Td("–" if acc is None else f"{acc:.4f}", className="num"),
            html.Td(s.get("program_lines", "–"), className="num")]))
    return html.Table([html.Thead(html.Tr([html.Th("run"), html.Th("task"),
                                           html.Th("test acc", className="num"),
                                           html.Th("lines", className="num")])),
                       html.Tbody(rows)], className="runs", id="pg-runs-table")


def layout(**query):
    store = get_store()
    task = query.get("task") if query.get("task") in TASKS else DEFAULT_TASK
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2("Transformer Programs"),
        html.Div([
            html.Div([
                html.H4("Train a program"),
                html.Div([
                    html.Label("task"),
                    dcc.Dropdown(id="pg-task", options=list(TASKS), value=task, clearable=False,
                                 style={"width": "200px"}),
                    html.Label("preset"),
                    dcc.Dropdown(id="pg-preset", options=list(PRESETS), value=DEFAULT_PRESET,
                                 clearable=False, style={"width": "120px"}),
                    html.Label("seed"),
                    dcc.Input(id="pg-seed", type="text", placeholder="preset's",
                              style={"width": "80px"}),
                ], className="controls"),
                html.Div(_preset_text(task, DEFAULT_PRESET), id="pg-preset-text",
                         className="muted", style={"fontSize": "12px", "marginBottom": "8px"}),
                html.Label("settings (key=value per line; task.KEY for task parameters)"),
                dcc.Textarea(id="pg-settings", placeholder="epochs=50\ntask.max_len=6",
                             style={"width": "100%", "height": "70px"}),
                html.Div([
                    html.Label("run name (optional)"),
                    dcc.Input(id="pg-name", type="text", placeholder="my-program",
                              style={"width": "240px"}),
                ], className="controls", style={"marginTop": "8px"}),
                html.Button("Train program", id="pg-launch", className="btn"),
                html.Div(id="pg-form-error", className="form-error"),
                dcc.Store(id="pg-launched"),
                dcc.Location(id="pg-redirect", refresh="callback-nav"),
            ], className="card grow"),
            html.Div([
                html.H4("Training jobs"),
                html.Div(_jobs_card(store), id="pg-jobs"),
            ], className="card", style={"flex": "0 1 460px"}),
        ], className="row"),
        html.Div([html.H4("Trained programs"), html.Div(_runs_card(store), id="pg-runs")],
                 className="card"),
        dcc.Interval(id="pg-poll", interval=poll_ms),
    ])


@callback(Output("pg-preset-text", "children"), Input("pg-task", "value"),
          Input("pg-preset", "value"), prevent_initial_call=True)
def show_preset(task, preset_name):
    return _preset_text(task, preset_name)


@callback(Output("pg-form-error", "children"), Output("pg-launched", "data"),
          Output("pg-poll", "disabled", allow_duplicate=True), Input("pg-launch", "n_clicks"),
          State("pg-task", "value"), State("pg-preset", "value"),
          State("pg-seed", "value"), State("pg-settings", "value"), State("pg-name", "value"),
          prevent_initial_call=True)
def launch(_clicks, task, preset_name, seed, settings, name):
    store = get_store()
    try:
        name = (name or "").strip()
        if name:
            store.check_new_name(name)
        else:
            name = new_run_name(task)
        request = train_request(task, preset_name, parse_settings(settings), seed=seed,
                                name=name)
    except UserError as exc:
        return f"{exc} — nothing was started", dash.no_update, dash.no_update
    # the run exists, with its resolved config, before its job starts: the job trains it from
    # the stored config and is linked to it from the first poll
    run_id = prepare_run(task, name=name, store=store, config=request.run_config)
    job = start_job(["programs", "train", "--run-id", run_id, "--json"], run_id=run_id,
                    store=store, env=job_env())
    return "", {"job": job.id, "name": name, "run_id": run_id}, False


@callback(Output("pg-jobs", "children"), Output("pg-runs", "children"),
          Output("pg-redirect", "href"), Output("pg-poll", "disabled"),
          Input("pg-poll", "n_intervals"), State("pg-launched", "data"),
          prevent_initial_call=True)
def poll(_n, launched):
    store = get_store()
    href = f"/runs/{launched['run_id']}/program" if launched else dash.no_update
    running = any(not job.done for job, _ in program_jobs(store))
    return _jobs_card(store), _runs_card(store), href, not running
