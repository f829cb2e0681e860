"""``/probes``: the runs holding probe fits or knowledge results, the QA accuracy table across
every knowledge result, and a form that launches ``workbench probes knowledge run`` as a job,
checked like the CLI (a bad value shows its one-line error beside the field and starts nothing).
The knowledge jobs and their progress are read back from the store on every poll, so a reload
re-attaches to a running job."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from ui.probes.data import all_knowledge
from ui.probes.launch import check_form, knowledge_jobs, launch_knowledge
from ui.probes.parts import FORM_KEYS, job_items, knowledge_form, qa_table_component, \
    runs_list
from ui.state import get_store, job_env
from workbench.errors import UserError

dash.register_page(__name__, path="/probes", name="Probes", title="Probes · workbench")


def layout(**query):
    store = get_store()
    jobs = knowledge_jobs(store)
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2("Probes and knowledge storage"),
        html.Div([
            knowledge_form(),
            html.Div([html.H4("Knowledge jobs"), html.Div(job_items(store, jobs), id="pb-jobs"),
                      html.H4("Runs with probe results"),
                      html.Div(runs_list(store), id="pb-runs")],
                     className="card", style={"flex": "0 1 480px"}),
        ], className="row"),
        html.Div([html.H4("Held-out QA accuracy per augmentation and protocol"),
                  html.Div(qa_table_component(all_knowledge(store)), id="pb-qa")],
                 className="card"),
        dcc.Interval(id="pb-poll", interval=poll_ms,
                     disabled=not any(not j.done for j in jobs)),
    ])


@callback(*[Output(f"pb-{k}-err", "children") for k in FORM_KEYS],
          Output("pb-form-error", "children"), Output("pb-jobs", "children",
                                                       allow_duplicate=True),
          Output("pb-poll", "disabled", allow_duplicate=True),
          Input("pb-launch", "n_clicks"), *[State(f"pb-{k}", "value") for k in FORM_KEYS],
          prevent_initial_call=True)
def launch(_clicks, *values):
    store = get_store()
    form = dict(zip(FORM_KEYS, values))
    name = form.pop("name")
    check = check_form(form, name, store)
    errors = [check.errors.get(k, "") for k in FORM_KEYS]
    if not check.ok:
        return (*errors, check.errors.get("form", "fix the highlighted values; nothing was "
                                          "started"), dash.no_update, dash.no_update)
    try:
        job = launch_knowledge(store, check.config, check.name, env=job_env())
    except UserError as exc:
        return (*errors, str(exc), dash.no_update, dash.no_update)
    return (*errors, f"started job {job.id}", job_items(store, knowledge_jobs(store)), False)


@callback(Output("pb-jobs", "children"), Output("pb-runs", "children"),
          Output("pb-qa", "children"), Output("pb-poll", "disabled"),
          Input("pb-poll", "n_intervals"), prevent_initial_call=True)
def poll(_n):
    store = get_store()
    jobs = knowledge_jobs(store)
    return (job_items(store, jobs), runs_list(store), qa_table_component(all_knowledge(store)),
            not any(not j.done for j in jobs))
