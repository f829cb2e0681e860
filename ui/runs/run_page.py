"""Run page: config, live train/test curves (log axes on demand), progress bar and ETA while
the job runs, checkpoints, cancel, and links to the analyses that apply to the run.

Live progress is a ``dcc.Interval`` poll that reads only metric rows newer than the last row id
it saw (kept in a ``dcc.Store``) and extends the figure's traces with a ``Patch``. The page is
rebuilt from the store on every load, so a reload — or a server restart — re-attaches to a job
that is still running.
"""

from __future__ import annotations

import json

import dash
from dash import Input, Output, Patch, State, callback, dcc, html
from flask import current_app

from ui.components import run_or_not_found, progress_bar, status_badge
from ui.polling import TERMINAL_RUN, eta_seconds, poll_run
from ui.runs.data import checkpoints
from ui.figures import (CURVE_NAMES, axis_types, progress_text, rows_to_series,
                        training_curves)
from ui.state import get_store
from ui.jobs import request_cancel
from workbench.jobs import job_for_run

dash.register_page(__name__, path_template="/runs/<run_id>", name="Run", title="Run · workbench")


def analyses_for(run) -> list[tuple[str, str]]:
    """(name, href) of the registered pages whose ``analysis`` predicate accepts ``run``."""
    out = []
    for page in dash.page_registry.values():
        applies = page.get("analysis")
        template = page.get("path_template")
        if callable(applies) and template and applies(run):
            out.append((page["name"], template.replace("<run_id>", run.id)))
    return out


def _progress(poll, state: dict):
    """(bar fraction, done?, label) for the progress card."""
    total, step = poll.total_steps, poll.last_step
    if poll.run.status == "completed":
        return 1.0, True, progress_text(total or step, total or step, None) + " · done"
    if poll.finished:
        return (step / total if total else 0.0), False, (
            progress_text(step, total, None) if total else "") + f" · {poll.run.status}"
    if not total:
        return 0.0, False, "running"
    eta = eta_seconds(state, step, total)
    label = progress_text(step, total, eta) if step else "starting…"
    return step / total, False, label


def _can_cancel(poll) -> bool:
    # The run turns terminal a moment before its job's process exits; nothing to cancel then.
    return poll.job is not None and not poll.job.done and poll.run.status not in TERMINAL_RUN


def _no_curves(poll) -> str:
    """What the empty curves say, by the run's state (and how to get metrics)."""
    run = poll.run
    every = ((run.config or {}).get("train") or {}).get("eval_every") \
        if isinstance(run.config, dict) else None
    if poll.job is None and run.status == "created":
        return f"no metrics yet: train it with  workbench train {run.task} --run-id {run.id}"
    if not poll.finished:
        return "waiting for the first evaluation" + (f" (every {every:,} steps)" if every else "")
    return f"this run logged no train/test metrics ({run.status})"


def _checkpoint_list(store, run_id):
    items = checkpoints(store, run_id)
    if not items:
        return html.Div("no checkpoints yet", className="muted")
    return html.Ul([html.Li([f"step {c['step']:,} " if c["step"] is not None else "final ",
                             html.Span(f"sha256 {c['sha256']}…", className="muted",
                                       title=c["path"])])
                    for c in items], id="checkpoint-list")


def _job_info(poll):
    job = poll.job
    if job is None:
        return html.Div("not started from the app", className="muted")
    parts = [html.Div([f"job {job.id} · ", status_badge(job.status),
                       f" · exit code {job.exit_code}" if job.exit_code is not None else ""])]
    if poll.run.message and poll.run.status in ("failed", "cancelled"):
        parts.append(html.Div(poll.run.message, className="form-error", id="run-message"))
    if job.status == "failed":
        parts.append(html.Pre("\n".join(job.log_tail(20)), className="log", id="job-log"))
    return html.Div(parts)


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("all runs", "/"))
    if not_found is not None:
        return not_found
    poll = poll_run(store, run.id)
    history: dict[str, list[tuple[int, float]]] = {}
    for name, (xs, ys) in rows_to_series(poll.rows).items():
        history[name] = list(zip(xs, ys))
    state = {"run_id": run.id, "last_id": poll.last_id, "last_step": poll.last_step,
             "n_ckpt": len(checkpoints(store, run.id)), "empty": not history}
    fraction, done, label = _progress(poll, state)
    running_job = _can_cancel(poll)
    links = analyses_for(run)
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2([run.name or run.id, " ", status_badge(run.status, id="run-status")]),
        html.Div(f"{run.id} · {run.kind} · task {run.task}", className="muted"),
        html.Div([
            html.Div([
                html.Div(progress_bar(fraction, done), style={"flex": "1"}),
                html.Button("Cancel", id="cancel-btn", className="btn danger",
                            disabled=not running_job),
            ], className="row", style={"alignItems": "center"}),
            html.Div(label, id="progress-text", className="muted"),
            html.Div(id="cancel-feedback", className="muted"),
        ], className="card"),
        html.Div([
            html.Div([
                dcc.Checklist(id="log-axes", inline=True, value=[],
                              options=[{"label": " log steps ", "value": "x"},
                                       {"label": " log loss", "value": "y"}]),
                dcc.Graph(id="run-curves", figure=training_curves(history,
                                                                  empty=_no_curves(poll)),
                          config={"displaylogo": False}),
            ], className="card grow"),
            html.Div([
                html.H4("Job"), html.Div(_job_info(poll), id="job-info"),
                html.H4("Checkpoints"),
                html.Div(_checkpoint_list(store, run.id), id="checkpoints"),
                html.H4("Analyses"),
                html.Ul([html.Li(dcc.Link(name, href=href)) for name, href in links])
                if links else html.Div("no analysis pages apply to this run yet",
                                       className="muted"),
            ], className="card", style={"flex": "0 1 380px"}),
        ], className="row"),
        html.Details([html.Summary("config"),
                      html.Pre(json.dumps(run.config, indent=2), className="config")],
                     className="card", open=False),
        dcc.Store(id="run-poll-state", data=state),
        dcc.Interval(id="run-poll", interval=poll_ms, disabled=poll.finished),
    ])


@callback(
    Output("run-curves", "figure"), Output("progress-inner", "style"),
    Output("progress-inner", "className"), Output("progress-text", "children"),
    Output("run-status", "children"), Output("run-status", "className"),
    Output("cancel-btn", "disabled"), Output("checkpoints", "children"),
    Output("job-info", "children"), Output("run-poll", "disabled"),
    Output("run-poll-state", "data"),
    Input("run-poll", "n_intervals"), State("run-poll-state", "data"),
    State("log-axes", "value"), prevent_initial_call=True)
def poll(_n, state, log_axes=()):
    store = get_store()
    p = poll_run(store, state["run_id"], since_id=state["last_id"], last_step=state["last_step"])
    state = {**state, "last_id": p.last_id, "last_step": p.last_step}
    figure = dash.no_update
    series = rows_to_series(p.rows)
    if series and state.get("empty"):  # the first points: the whole figure, axes and all
        figure = training_curves({k: list(zip(*v)) for k, v in series.items()},
                                 log_x="x" in (log_axes or ()), log_y="y" in (log_axes or ()))
        state["empty"] = False
    elif series:
        figure = Patch()
        for i, name in enumerate(CURVE_NAMES):
            if name in series:
                xs, ys = series[name]
                figure["data"][i]["x"].extend(xs)
                figure["data"][i]["y"].extend(ys)
    fraction, done, label = _progress(p, state)
    n_ckpt = len(checkpoints(store, p.run.id))
    ckpts = dash.no_update
    if n_ckpt != state.get("n_ckpt"):
        state["n_ckpt"] = n_ckpt
        ckpts = _checkpoint_list(store, p.run.id)
    running_job = _can_cancel(p)
    return (figure, {"width": f"{100 * fraction:.1f}%"},
            "progress-inner" + (" done" if done else ""), label, p.run.status,
            f"status status-{p.run.status}", not running_job, ckpts, _job_info(p), p.finished,
            state)


@callback(Output("run-curves", "figure", allow_duplicate=True), Input("log-axes", "value"),
          prevent_initial_call=True)
def toggle_log(value):
    patch = Patch()
    for axis, kind in axis_types(log_x="x" in value, log_y="y" in value).items():
        patch["layout"][axis]["type"] = kind
    return patch


@callback(Output("cancel-feedback", "children"), Input("cancel-btn", "n_clicks"),
          State("run-poll-state", "data"), prevent_initial_call=True)
def cancel(_clicks, state):
    store = get_store()
    return request_cancel(store, job_for_run(state["run_id"], store=store))
