"""``/prior``: launch ``workbench probes prior`` (the analysis) or ``workbench probes
prior-finetune`` (finetune the localised layers, with controls) as a job, checked like the CLI
(:mod:`ui.prior.launch`; a bad value shows its one-line error and nothing starts); the prior jobs
with their state from the store (polled, so a reload re-attaches); and the runs with prior
results, each linking to its ``/runs/<id>/prior`` page."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from probes.prior_train import TRAINABLE
from ui.components import status_badge
from ui.prior.launch import FIELDS, FINETUNE_DEFAULTS, TASK_NAMES, check_form, job_text, \
    launch, model_runs, prior_jobs
from ui.prior.results import prior_runs
from ui.state import get_store, job_env
from workbench.errors import UserError

dash.register_page(__name__, path="/prior", name="Prior", title="Prior · workbench")

NO_RUNS = ("no prior results yet: launch an analysis above, or run  "
           "workbench probes prior RUN --task count")


def _runs_list(store):
    rows = prior_runs(store)
    if not rows:
        return html.Div(NO_RUNS, className="muted")
    items = []
    for row in rows:
        run = row["run"]
        what = [f"{len(row['analyses'])} analyses"] if row["analyses"] else []
        if run.kind == "prior-finetune":
            what.append("finetune run")
        if row["finetunes"]:
            what.append(f"{len(row['finetunes'])} finetune runs")
        items.append(html.Li([dcc.Link(run.name or run.id, href=f"/runs/{run.id}/prior"),
                              " ", status_badge(run.status), " ",
                              html.Span(" · ".join(what), className="muted")]))
    return html.Ul(items, id="pr-runs-list")


def _jobs_list(store):
    jobs = prior_jobs(store)[:20]
    if not jobs:
        return html.Div("no prior jobs yet", className="muted"), False
    items = [html.Li([status_badge(j.status), " ", job_text(j), " ",
                      dcc.Link("results", href=f"/runs/{j.argv[2]}/prior")
                      if j.argv[2].startswith("r-") else ""]) for j in jobs]
    return html.Ul(items, id="pr-jobs-list"), any(not j.done for j in jobs)


def _field(label, component, key, note=None):
    return html.Div([html.Label(label, htmlFor=f"pr-{key}"), component,
                     html.Span(note or "", className="muted"),
                     html.Span(id=f"pr-{key}-err", className="field-error")], className="field")


def layout(model: str | None = None, **query):
    store = get_store()
    runs = model_runs(store)
    options = [{"label": f"{r.name or r.id} · {r.kind}", "value": r.id} for r in runs]
    chosen = next((r.id for r in runs if model in (r.id, r.name)), runs[0].id if runs else None)
    jobs, running = _jobs_list(store)
    return html.Div([
        html.H2("Prior localisation"),
        html.Div([
            html.Div([
                dcc.RadioItems(id="pr-command", value="prior", inline=True, options=[
                    {"label": " analyse (probes prior)", "value": "prior"},
                    {"label": " finetune the localised layers (probes prior-finetune)",
                     "value": "prior-finetune"}]),
                _field("model run", dcc.Dropdown(id="pr-model", options=options, value=chosen,
                                                 style={"width": "380px"}), "model"),
                _field("or a Hugging Face directory (finetune only)",
                       dcc.Input(id="pr-dir", type="text", style={"width": "380px"}), "dir"),
                _field("task", dcc.Dropdown(id="pr-task", options=list(TASK_NAMES),
                                            value="count", clearable=False,
                                            style={"width": "200px"}), "task"),
                _field("prompts", dcc.Input(id="pr-n", type="text", value="600"), "n"),
                _field("answer values", dcc.Input(id="pr-values", type="text",
                                                  placeholder="default: all"), "values",
                       " restrict to these answers, e.g. 1,2,3,10,20"),
                html.H4("finetune"),
                _field("layers", dcc.Input(id="pr-layers", type="text", value="auto"), "layers",
                       " auto (the localisation rule) or block indices, e.g. 0,2"),
                _field("steps", dcc.Input(id="pr-steps", type="text",
                                          value=str(FINETUNE_DEFAULTS["steps"])), "steps"),
                _field("trainable", dcc.Dropdown(
                    id="pr-trainable", options=list(TRAINABLE), clearable=False,
                    value=FINETUNE_DEFAULTS["trainable"], style={"width": "200px"}), "trainable",
                    " every parameter of the blocks, their biases, or a low-rank update"),
                _field("rank (lowrank)", dcc.Input(id="pr-rank", type="text",
                                                   value=str(FINETUNE_DEFAULTS["rank"])), "rank"),
                _field("learning rate", dcc.Input(
                    id="pr-lr", type="text", placeholder=f"default {FINETUNE_DEFAULTS['lr']}"),
                    "lr"),
                _field("KL weight", dcc.Input(
                    id="pr-kl_weight", type="text",
                    placeholder=f"default {FINETUNE_DEFAULTS['kl_weight']}"), "kl_weight",
                    " KL to the original model off the correct answer (0: plain cross-entropy)"),
                _field("held-out answer values", dcc.Input(id="pr-held_out", type="text",
                                                           placeholder="default: a third of "
                                                           "each bin"), "held_out"),
                _field("name of the new run", dcc.Input(id="pr-name", type="text"), "name"),
                html.Div(html.Button("Launch job", id="pr-launch", className="btn"),
                         style={"marginTop": "10px"}),
                html.Div(id="pr-error", className="form-error"),
            ], className="card grow"),
            html.Div([html.H4("Prior jobs"), html.Div(jobs, id="pr-jobs"),
                      html.H4("Runs with prior results"),
                      html.Div(_runs_list(store), id="pr-runs")],
                     className="card", style={"flex": "0 1 520px"}),
        ], className="row"),
        dcc.Store(id="pr-launched"),
        dcc.Interval(id="pr-poll", interval=current_app.config.get("WORKBENCH_POLL_MS", 1000),
                     disabled=not running),
    ])


@callback(*[Output(f"pr-{k}-err", "children") for k in FIELDS],
          Output("pr-error", "children"), Output("pr-launched", "data"),
          Input("pr-launch", "n_clicks"), State("pr-command", "value"),
          State("pr-model", "value"), State("pr-dir", "value"), State("pr-task", "value"),
          State("pr-n", "value"), State("pr-layers", "value"), State("pr-steps", "value"),
          State("pr-held_out", "value"), State("pr-name", "value"),
          State("pr-trainable", "value"), State("pr-rank", "value"),
          State("pr-values", "value"), State("pr-lr", "value"), State("pr-kl_weight", "value"),
          prevent_initial_call=True)
def launch_job(_clicks, command, model, directory, task, n, layers, steps, held_out, name,
               trainable=None, rank=None, answer_values=None, lr=None, kl_weight=None):
    store = get_store()
    values = dict(model=(directory or "").strip() or model, task=task, n=n, layers=layers,
                  steps=steps, held_out=held_out, name=name, trainable=trainable, rank=rank,
                  values=answer_values, lr=lr, kl_weight=kl_weight)
    checked = check_form(store, command, values)
    errors = [checked.errors.get(k, "") for k in FIELDS]
    if not checked.ok:
        return (*errors, checked.errors.get("form", "fix the highlighted value; nothing was "
                                                    "started"), dash.no_update)
    try:
        job = launch(store, checked.argv, env=job_env())
    except UserError as exc:
        return (*errors, str(exc), dash.no_update)
    return (*errors, "", job.id)


@callback(Output("pr-jobs", "children"), Output("pr-runs", "children"),
          Output("pr-poll", "disabled"), Input("pr-poll", "n_intervals"),
          Input("pr-launched", "data"), prevent_initial_call=True)
def refresh(_n, _launched):
    store = get_store()
    jobs, running = _jobs_list(store)
    return jobs, _runs_list(store), not running
