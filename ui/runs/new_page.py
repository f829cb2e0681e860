"""New-run page: pick a task and preset, edit hyperparameters, launch a training job.

The form is checked with the CLI's own rules (:func:`ui.runs.launch.validate`, which calls
``training.api.build_config``); an invalid value is shown next to its field and nothing is
started. A valid form creates the run and its job, then goes to the run page. Jobs still running
are listed here, read from the store, so they are found again after a reload or a restart.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from ui.components import status_badge
from ui.runs.data import active_jobs
from ui.runs.launch import (EXTRA, NAME, form_fields, launch_training, preset_options, task_options,
                       validate)
from ui.state import get_store, job_env
from workbench.errors import UserError

dash.register_page(__name__, path="/new", name="New run", title="New run · workbench")

DEFAULT_TASK, DEFAULT_PRESET = "modular-addition", "tiny"


def _fields(task: str, preset: str):
    try:
        fields = form_fields(task, preset)
    except UserError as exc:
        return html.Div(str(exc), className="form-error")
    sections: dict[str, list] = {}
    for f in fields:
        section = f.key.split(".", 1)[0]
        sections.setdefault(section, []).append(html.Div([
            html.Label(f.label, htmlFor=f"hp-{f.key}"),
            dcc.Input(id={"type": "hp", "key": f.key}, value=f.value, type="text",
                      debounce=False),
            html.Span(id={"type": "hp-err", "key": f.key}, className="field-error"),
        ], className="field"))
    return [html.Div([html.H4(section)] + items) for section, items in sections.items()]


def _jobs_list():
    jobs = active_jobs(get_store())
    if not jobs:
        return html.Div("no jobs running", className="muted")
    return html.Ul([html.Li([dcc.Link(j.run_id or j.id, href=f"/runs/{j.run_id}")
                             if j.run_id else j.id, " ", status_badge(j.status), " ",
                             html.Span("workbench " + " ".join(j.argv[:4]), className="muted")])
                    for j in jobs], id="active-jobs-list")


def layout(**query):
    tasks = task_options()
    task = query.get("task") or DEFAULT_TASK
    presets = preset_options(task)
    preset = query.get("preset") or (DEFAULT_PRESET if DEFAULT_PRESET in presets else "default")
    return html.Div([
        html.H2("New training run"),
        html.Div([
            html.Div([
                html.Div([
                    html.Label("task"),
                    dcc.Dropdown(id="new-task", options=tasks, value=task, clearable=False,
                                 style={"width": "260px"}),
                    html.Label("preset"),
                    dcc.Dropdown(id="new-preset", options=presets, value=preset,
                                 clearable=False, style={"width": "160px"}),
                ], className="controls"),
                html.Div(_fields(task, preset), id="new-fields"),
                html.H4("other overrides"),
                html.Div([
                    dcc.Textarea(id="new-extra", placeholder="key=value per line, e.g. "
                                 "beta2=0.99", style={"width": "330px", "height": "50px"}),
                    html.Span(id="new-extra-err", className="field-error"),
                ], className="row"),
                html.Div([
                    html.Label("run name (optional)"),
                    dcc.Input(id="new-name", type="text", placeholder="my-run"),
                    html.Span(id="new-name-err", className="field-error"),
                ], className="controls", style={"marginTop": "10px"}),
                html.Button("Launch training job", id="new-launch", className="btn"),
                html.Div(id="new-form-error", className="form-error"),
                dcc.Location(id="new-redirect", refresh="callback-nav"),
            ], className="card grow"),
            html.Div([html.H4("Running jobs"), html.Div(_jobs_list(), id="active-jobs")],
                     className="card", style={"flex": "0 1 360px"}),
        ], className="row"),
        dcc.Interval(id="new-jobs-refresh", interval=2000),
    ])


@callback(Output("new-preset", "options"), Output("new-preset", "value"),
          Input("new-task", "value"), State("new-preset", "value"), prevent_initial_call=True)
def task_changed(task, preset):
    presets = preset_options(task)
    if preset not in presets:
        preset = DEFAULT_PRESET if DEFAULT_PRESET in presets else presets[0]
    return presets, preset


@callback(Output("new-fields", "children"), Input("new-preset", "value"),
          State("new-task", "value"), prevent_initial_call=True)
def preset_changed(preset, task):
    return _fields(task, preset)


@callback(Output("active-jobs", "children"), Input("new-jobs-refresh", "n_intervals"),
          prevent_initial_call=True)
def refresh_jobs(_n):
    return _jobs_list()


@callback(
    Output({"type": "hp-err", "key": ALL}, "children"), Output("new-extra-err", "children"),
    Output("new-name-err", "children"), Output("new-form-error", "children"),
    Output("new-redirect", "href"),
    Input("new-launch", "n_clicks"),
    State("new-task", "value"), State("new-preset", "value"),
    State({"type": "hp", "key": ALL}, "value"), State({"type": "hp", "key": ALL}, "id"),
    State("new-extra", "value"), State("new-name", "value"), prevent_initial_call=True)
def launch(_clicks, task, preset, values, ids, extra, name):
    store = get_store()
    keys = [i["key"] for i in ids]
    check = validate(task, preset, dict(zip(keys, values)), extra=extra,
                     name=(name or "").strip() or None, store=store)
    field_errors = [check.errors.get(k, "") for k in keys]
    if not check.ok:
        return (field_errors, check.errors.get(EXTRA, ""), check.errors.get(NAME, ""),
                check.errors.get("form", "fix the highlighted values; nothing was started"),
                dash.no_update)
    try:
        run, _job = launch_training(store, task, preset, check.overrides,
                                    name=(name or "").strip() or None, env=job_env())
    except UserError as exc:
        return field_errors, "", "", str(exc), dash.no_update
    return field_errors, "", "", "", f"/runs/{run.id}"
