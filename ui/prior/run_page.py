"""``/runs/<id>/prior``: a run's prior localisation, from the stored results only
(:mod:`ui.prior.results`): accuracy by prior bin beside the instruction baseline, error vs prior
per answer value, R² of the prior by layer and position against the shuffled control with the
localised layers marked (split by prompt or by answer value), and the before / after comparison
of a finetune (this run's, if it is a ``prior-finetune`` run, which links back to its parent;
else the finetunes made from it). Prior jobs on the run are followed from the store (a reload
re-attaches); when one ends, its results appear. Empty states name the command that makes the
data."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html
from flask import current_app

from ui.components import run_or_not_found, status_badge
from ui.prior.figures import (accuracy_by_bin, comparison_rows, error_vs_prior, fmt,
                              finetune_comparison, r2_by_layer, summary_lines)
from ui.prior.launch import job_text, prior_jobs
from ui.prior.results import (FINETUNE_RUN_KIND, analyses, analysis_label, finetune_result,
                              finetune_runs, has_prior, parent_id)
from ui.state import get_store


def _applies(run) -> bool:
    try:
        return has_prior(get_store(), run)
    except RuntimeError:  # outside the app (no store to ask): the finetune runs at least
        return run.kind == FINETUNE_RUN_KIND


dash.register_page(__name__, path_template="/runs/<run_id>/prior", name="Prior localisation",
                   title="Prior · workbench", analysis=_applies)


def no_analysis(ref: str) -> str:
    return f"no prior analysis yet: run  workbench probes prior {ref} --task count  " \
           "(or launch it from /prior)"


def no_finetune(ref: str) -> str:
    return f"no finetune yet: run  workbench probes prior-finetune {ref} --task count " \
           "--layers auto  (or launch it from /prior)"


def analysis_figures(store, run_id: str, key: str | None, split: str = "prompts"):
    """(bins, scatter, R², summary lines) of the stored analysis ``key`` (or the empty states)."""
    run = store.get_run(run_id)
    result = analyses(store, run_id).get(key) if key else None
    empty = no_analysis(run.name or run.id)
    return (accuracy_by_bin(result, empty=empty), error_vs_prior(result, empty=empty),
            r2_by_layer(result, split=split, empty=empty), summary_lines(result))


def _table(rows):
    head = ("", "held-out accuracy", "accuracy", "Spearman ρ", "95% CI")
    body = [html.Tr([html.Th(h) for h in head])]
    body += [html.Tr([html.Td(r["label"]), html.Td(fmt(r["held_out_accuracy"])),
                      html.Td(fmt(r["accuracy"])), html.Td(fmt(r["rho"])),
                      html.Td(f"{fmt(r['ci_low'])} .. {fmt(r['ci_high'])}")]) for r in rows]
    return html.Table(html.Tbody(body), className="table", id="pr-ft-rows")


def finetune_view(store, finetune_id: str | None, page_run_id: str):
    """(comparison figure, table, note) of a finetune run's stored result, on the page of
    ``page_run_id`` (the finetune run itself or its parent)."""
    page_run = store.get_run(page_run_id)
    result = None
    note = ""
    if finetune_id:
        run = store.get_run(finetune_id)
        result = finetune_result(store, run)
        held = ", ".join((result or {}).get("config", {}).get("held_out") or [])
        note = dcc.Link(f"finetune run {run.name or run.id}", href=f"/runs/{run.id}/prior") \
            if run.id != page_run.id else ""
        note = html.Span([note, f" · held-out answer values: {held}" if held else "",
                          "" if result else f" · {run.status}, no result stored yet"])
    fig = finetune_comparison(result, empty=no_finetune(page_run.name or page_run.id))
    return fig, _table(comparison_rows(result)) if result else "", note


def _finetune_choices(store, run):
    if run.kind == FINETUNE_RUN_KIND:
        return [{"label": run.name or run.id, "value": run.id}]
    return [{"label": f"{r.name or r.id} · blocks {(r.config or {}).get('layers')} · "
                      f"{r.status}", "value": r.id} for r in finetune_runs(store, run.id)]


def _jobs(store, run_id):
    jobs = prior_jobs(store, run_id)[:10]
    items = [html.Li([status_badge(j.status), " ", job_text(j)]) for j in jobs]
    return (html.Ul(items) if items else html.Div("no prior jobs on this run", className="muted"),
            any(not j.done for j in jobs))


def _lineage(store, run):
    parent = parent_id(run)
    if run.kind != FINETUNE_RUN_KIND:
        return ""
    if not parent:
        source = (run.config or {}).get("source", "a model directory")
        return html.Div(f"finetuned from {source}", className="muted", id="pr-parent")
    try:
        p = store.get_run(parent)
    except Exception:  # the parent was deleted
        return html.Div(f"finetuned from {parent} (no longer in the store)", id="pr-parent")
    return html.Div(["finetuned from ", dcc.Link(p.name or p.id, href=f"/runs/{p.id}/prior"),
                     " (its prior page) · ", dcc.Link("run page", href=f"/runs/{p.id}")],
                    id="pr-parent")


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("prior", "/prior"))
    if not_found is not None:
        return not_found
    keys = analyses(store, run.id)
    key = list(keys)[-1] if keys else None
    bins, scatter, r2, lines = analysis_figures(store, run.id, key)
    choices = _finetune_choices(store, run)
    ft = choices[0]["value"] if choices else None
    ft_fig, ft_table, ft_note = finetune_view(store, ft, run.id)
    jobs, running = _jobs(store, run.id)
    graph = {"displaylogo": False}
    return html.Div([
        html.H2([run.name or run.id, " ", status_badge(run.status, id="pr-status"),
                 html.Span(f" {run.kind} · prior localisation", className="muted")]),
        _lineage(store, run),
        html.Div([dcc.Link("run page", href=f"/runs/{run.id}"), " · ",
                  dcc.Link("launch prior jobs", href=f"/prior?model={run.id}")]),
        html.Div([html.H4("Prior jobs"), html.Div(jobs, id="pr-run-jobs")], className="card"),
        html.Div([
            html.Div([
                dcc.Dropdown(id="pr-pick", value=key, clearable=False, style={"width": "420px"},
                             options=[{"label": analysis_label(k, p), "value": k}
                                      for k, p in keys.items()], placeholder="no analysis"),
                dcc.RadioItems(id="pr-split", value="prompts", inline=True, options=[
                    {"label": " R² split by prompt", "value": "prompts"},
                    {"label": " split by answer value", "value": "values"}]),
            ], className="controls"),
            html.Div([html.Div(t) for t in lines], id="pr-summary", className="muted"),
            html.Div([
                html.Div(dcc.Graph(id="pr-bins", figure=bins, config=graph), className="grow"),
                html.Div(dcc.Graph(id="pr-scatter", figure=scatter, config=graph),
                         className="grow"),
            ], className="row"),
            dcc.Graph(id="pr-r2", figure=r2, config=graph),
        ], className="card"),
        html.Div([
            html.H4("Finetuning the localised layers, beside the controls"),
            dcc.Dropdown(id="pr-ft-pick", options=choices, value=ft, clearable=False,
                         placeholder="no finetune runs", style={"width": "420px"}),
            html.Div(ft_note, id="pr-ft-note", className="muted"),
            dcc.Graph(id="pr-ft", figure=ft_fig, config=graph),
            html.Div(ft_table, id="pr-ft-table"),
        ], className="card"),
        dcc.Store(id="pr-run", data={"run_id": run.id, "keys": list(keys),
                                     "finetunes": [c["value"] for c in choices]}),
        dcc.Interval(id="pr-run-poll", interval=current_app.config.get("WORKBENCH_POLL_MS",
                                                                       1000),
                     disabled=not running),
    ])


@callback(Output("pr-bins", "figure"), Output("pr-scatter", "figure"),
          Output("pr-r2", "figure"), Output("pr-summary", "children"),
          Input("pr-pick", "value"), Input("pr-split", "value"), State("pr-run", "data"),
          prevent_initial_call=True)
def show_analysis(key, split, data):
    bins, scatter, r2, lines = analysis_figures(get_store(), data["run_id"], key,
                                                split or "prompts")
    return bins, scatter, r2, [html.Div(t) for t in lines]


@callback(Output("pr-ft", "figure"), Output("pr-ft-table", "children"),
          Output("pr-ft-note", "children"), Input("pr-ft-pick", "value"),
          State("pr-run", "data"), prevent_initial_call=True)
def show_finetune(finetune_id, data):
    return finetune_view(get_store(), finetune_id, data["run_id"])


@callback(Output("pr-run-jobs", "children"), Output("pr-run-poll", "disabled"),
          Output("pr-pick", "options"), Output("pr-pick", "value"),
          Output("pr-ft-pick", "options"), Output("pr-ft-pick", "value"),
          Output("pr-run", "data"), Input("pr-run-poll", "n_intervals"),
          State("pr-run", "data"), prevent_initial_call=True)
def poll(_n, data):
    """Job state; when the stored results change (a job ended), the new ones are shown."""
    store = get_store()
    run = store.get_run(data["run_id"])
    jobs, running = _jobs(store, run.id)
    keys = analyses(store, run.id)
    choices = _finetune_choices(store, run)
    out = [jobs, not running, dash.no_update, dash.no_update, dash.no_update, dash.no_update,
           dash.no_update]
    if list(keys) != data["keys"]:
        out[2] = [{"label": analysis_label(k, p), "value": k} for k, p in keys.items()]
        out[3] = list(keys)[-1]
    finetunes = [c["value"] for c in choices]
    if finetunes != data["finetunes"]:
        out[4], out[5] = choices, finetunes[0] if finetunes else None
    if out[2] is not dash.no_update or out[4] is not dash.no_update:
        out[6] = {**data, "keys": list(keys), "finetunes": finetunes}
    return tuple(out)
