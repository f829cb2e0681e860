"""Program page of a run (``/runs/<run_id>/program``), linked from the Run page for program runs.

While the run trains: its epoch progress and loss/temperature curves, polled from the store
(only metric rows newer than the last row id seen, appended with a ``Patch``); a reload rebuilds
everything from the store. Once trained: the decompiled program with syntax highlighting; an
input box whose tokens step through the discrete program (:func:`programs.inspect.
trace_program`) — per layer, every variable's value at every position and, per attention head,
which key position each query selected; and the unembedding table. Callbacks call only the
programs Python API.
"""

from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, callback, ctx, dcc, html
from flask import current_app

from programs.inspect import ProgramTrace, tokenize, trace_program, unembedding
from ui.components import run_or_not_found, progress_bar, status_badge
from ui.programs.parts import (compiled_links, dash_table, epoch_progress, example_input,
                                     job_for_program_run, load_program, total_epochs)
from ui.programs.figures import (PROGRESS_SERIES, code_markdown, head_figure, progress_label,
                                step_titles, trace_table, training_figure, unembedding_table)
from ui.state import get_store, job_env
from ui.jobs import request_cancel
from workbench.errors import UserError
from workbench.jobs import job_status, start_job

TERMINAL = ("completed", "failed", "cancelled")

dash.register_page(__name__, path_template="/runs/<run_id>/program", name="Program",
                   title="Program · workbench", analysis=lambda run: run.kind == "program")


def _inspector(store, run):
    """Code, stepper and unembedding of a completed run (or why they cannot be shown)."""
    try:
        loaded, source = load_program(store, run.id)
    except UserError as exc:
        return html.Div(str(exc), className="form-error", id="pg-load-error")
    text = example_input(loaded)
    trace = trace_program(loaded.program, tokenize(text, loaded.program.shape))
    titles = step_titles(trace)
    shape = loaded.program.shape
    return html.Div([
        html.Div([
            html.H4("Step through an input"),
            html.Div([
                dcc.Input(id="pg-input", type="text", value=text, debounce=True,
                          style={"width": "320px"}),
                html.Button("Run", id="pg-run", className="btn"),
                html.Span(f"vocabulary: {' '.join(shape.input_vocab)} · at most {shape.n_ctx} "
                          "tokens with BOS (added for you); padded with PAD like in training",
                          className="muted"),
            ], className="controls"),
            html.Div(id="pg-input-error", className="form-error"),
            html.Div([
                html.Button("◀ prev", id="pg-prev", className="btn"),
                html.Div(dcc.Slider(id="pg-step", min=0, max=len(titles) - 1, step=1, value=0,
                                    marks={i: t for i, t in enumerate(titles)}),
                         style={"flex": "1", "minWidth": "300px"}),
                html.Button("next ▶", id="pg-next", className="btn"),
            ], className="controls"),
            html.Div(id="pg-step-title", style={"fontWeight": "600"}),
            html.Div(dash_table(trace_table(trace, 0), "pg-trace-table"), id="pg-trace",
                     style={"overflowX": "auto"}),
            html.Div("highlighted: written in this step · grey: pruned from the exported "
                     "program (nothing reads it)", className="muted", style={"fontSize": "12px"}),
            dcc.Graph(id="pg-heads", figure=head_figure(trace, 0),
                      config={"displaylogo": False}),
            dcc.Store(id="pg-trace-data", data=trace.to_json()),
        ], className="card"),
        html.Div([
            html.Div([
                html.H4(f"Program ({len(source.splitlines())} lines)"),
                html.Div(dcc.Markdown(code_markdown(source), id="pg-code"),
                         style={"maxHeight": "640px", "overflow": "auto", "fontSize": "12px"}),
            ], className="card grow"),
            html.Div([
                html.H4("Unembedding"),
                html.Div("logit added per (variable, value); numerical rows are multiplied by "
                         "the value; variables that never change a logit are left out",
                         className="muted", style={"fontSize": "12px"}),
                html.Div(dash_table(unembedding_table(unembedding(loaded.program)),
                                    "pg-unembed-table"),
                         style={"maxHeight": "640px", "overflow": "auto"}),
            ], className="card grow"),
        ], className="row"),
    ])


def _facts(run) -> str:
    summary = run.summary or {}
    parts = [f"{k} {summary[k]:.4f}" for k in ("test_acc", "train_acc")
             if isinstance(summary.get(k), float)]
    if summary.get("program_lines"):
        parts.append(f"{summary['program_lines']} program lines")
    return "".join(f"· {p} " for p in parts)


def layout(run_id: str | None = None, **query):
    store = get_store()
    run, not_found = run_or_not_found(store, run_id, ("all programs", "/programs"))
    if not_found is not None:
        return not_found
    if run.kind != "program":
        return html.Div([html.H2("Not a program run"),
                         html.P(f"run {run.id} is a {run.kind!r} run, not a Transformer Program"),
                         dcc.Link("the run", href=f"/runs/{run.id}")])
    history, last_id, epoch, loss = epoch_progress(store, run)
    total = total_epochs(run)
    done = run.status in TERMINAL
    fraction = 1.0 if run.status == "completed" else (epoch or 0) / (total or 1)
    job = job_for_program_run(store, run)
    poll_ms = current_app.config.get("WORKBENCH_POLL_MS", 1000)
    return html.Div([
        html.H2([run.name or run.id, " ", status_badge(run.status, id="pg-status")]),
        html.Div([f"{run.id} · program · task {run.task} ",
                  html.Span(_facts(run), id="pg-facts"), " ",
                  dcc.Link("run page", href=f"/runs/{run.id}"), " · ",
                  dcc.Link("all programs", href="/programs")], className="muted"),
        html.Details([
            html.Summary(progress_label(epoch, total, run.status, loss), id="pg-progress-text"),
            html.Div([
                html.Div(progress_bar(fraction, run.status == "completed", "pg-progress"),
                         style={"flex": "1"}),
                html.Button("Cancel", id="pg-cancel", className="btn danger",
                            disabled=job is None or job.done),
            ], className="row", style={"alignItems": "center"}),
            html.Div(id="pg-cancel-feedback", className="muted"),
            html.Div(run.message or "", className="form-error", id="pg-run-message")
            if run.status in ("failed", "cancelled") else None,
            dcc.Graph(id="pg-curves", figure=training_figure(history, empty=(
                "waiting for the first epoch" if not done else
                f"no epochs were logged ({run.status})")),
                      config={"displaylogo": False}),
        ], open=not done, className="card", id="pg-progress-card"),
        html.Div([
            html.Button("Compile to a transformer", id="pg-compile", className="btn",
                        disabled=run.status != "completed",
                        title="a standard TransformerBridge run with this program's known "
                              "circuit, for circuit discovery"),
            html.Span(id="pg-compile-feedback", className="muted"),
            html.Div(compiled_links(store, run), id="pg-compiled"),
            dcc.Store(id="pg-compile-job"),
            dcc.Interval(id="pg-compile-poll", interval=poll_ms, disabled=True),
        ], className="card"),
        html.Div(_inspector(store, run) if run.status == "completed" else
                 html.Div("the program is shown here when training completes",
                          className="muted"), id="pg-body"),
        dcc.Store(id="pg-poll-state", data={"run_id": run.id, "last_id": last_id,
                                            "epoch": epoch, "loss": loss,
                                            "empty": not history}),
        dcc.Interval(id="pg-poll", interval=poll_ms, disabled=done),
    ])


@callback(Output("pg-curves", "figure"), Output("pg-progress-text", "children"),
          Output("pg-progress-inner", "style"), Output("pg-progress-inner", "className"),
          Output("pg-status", "children"), Output("pg-status", "className"),
          Output("pg-cancel", "disabled"), Output("pg-body", "children"),
          Output("pg-poll", "disabled"), Output("pg-poll-state", "data"),
          Output("pg-facts", "children"), Output("pg-compile", "disabled"),
          Input("pg-poll", "n_intervals"),
          State("pg-poll-state", "data"),
          prevent_initial_call=True)
def poll(_n, state):
    store = get_store()
    run = store.get_run(state["run_id"])
    history, last_id, epoch, loss = epoch_progress(store, run, state["last_id"])
    if epoch is None:  # no new rows in this poll
        epoch, loss = state.get("epoch"), state.get("loss")
    figure = dash.no_update
    if history and state.get("empty"):  # the first points: the whole figure, axes and all
        figure = training_figure(history)
        state = {**state, "empty": False}
    elif history:
        figure = Patch()
        for i, name in enumerate(PROGRESS_SERIES):
            pts = history.get(name, [])
            figure["data"][i]["x"].extend([s + 1 for s, _ in pts])
            figure["data"][i]["y"].extend([v for _, v in pts])
    total = total_epochs(run)
    fraction = 1.0 if run.status == "completed" else (epoch or 0) / (total or 1)
    job = job_for_program_run(store, run)
    done = run.status in TERMINAL
    body = _inspector(store, run) if run.status == "completed" else dash.no_update
    if done and run.status != "completed":
        body = html.Div(run.message or f"training {run.status}", className="form-error")
    return (figure, progress_label(epoch, total, run.status, loss),
            {"width": f"{100 * fraction:.1f}%"},
            "progress-inner" + (" done" if run.status == "completed" else ""), run.status,
            f"status status-{run.status}", job is None or job.done or done, body, done,
            {**state, "last_id": last_id, "epoch": epoch, "loss": loss}, _facts(run),
            run.status != "completed")


@callback(Output("pg-compile-feedback", "children"), Output("pg-compile-job", "data"),
          Output("pg-compile-poll", "disabled"), Input("pg-compile", "n_clicks"),
          State("pg-poll-state", "data"), prevent_initial_call=True)
def compile_program(_clicks, state):
    # compiling is quick, but it is still work outside the request: a CLI job like any other
    job = start_job(["programs", "compile", state["run_id"], "--json"], store=get_store(),
                    env=job_env())
    return f" compiling (job {job.id})…", job.id, False


@callback(Output("pg-compile-feedback", "children", allow_duplicate=True),
          Output("pg-compiled", "children"), Output("pg-compile-poll", "disabled",
                                                     allow_duplicate=True),
          Input("pg-compile-poll", "n_intervals"), State("pg-compile-job", "data"),
          State("pg-poll-state", "data"), prevent_initial_call=True)
def compile_progress(_n, job_id, state):
    store = get_store()
    job = job_status(job_id, store=store)
    if not job.done:
        return dash.no_update, dash.no_update, False
    links = compiled_links(store, store.get_run(state["run_id"]))
    if job.status != "completed":
        return " " + " / ".join(job.log_tail(2)), links, True
    return " compiled", links, True


@callback(Output("pg-cancel-feedback", "children"), Input("pg-cancel", "n_clicks"),
          State("pg-poll-state", "data"), prevent_initial_call=True)
def cancel(_clicks, state):
    store = get_store()
    return request_cancel(store, job_for_program_run(store, store.get_run(state["run_id"])))


@callback(Output("pg-trace-data", "data"), Output("pg-input-error", "children"),
          Output("pg-step", "value", allow_duplicate=True),
          Input("pg-run", "n_clicks"), Input("pg-input", "n_submit"),
          State("pg-input", "value"), State("pg-poll-state", "data"), prevent_initial_call=True)
def run_input(_clicks, _submit, text, state):
    store = get_store()
    try:
        loaded, _ = load_program(store, state["run_id"])
        tokens = tokenize(text or "", loaded.program.shape)
    except UserError as exc:
        return dash.no_update, str(exc), dash.no_update
    return trace_program(loaded.program, tokens).to_json(), "", 0


@callback(Output("pg-step", "value"), Input("pg-prev", "n_clicks"), Input("pg-next", "n_clicks"),
          State("pg-step", "value"), State("pg-step", "max"), prevent_initial_call=True)
def step(_prev, _next, value, top):
    delta = -1 if ctx.triggered_id == "pg-prev" else 1
    return max(0, min(int(top), int(value or 0) + delta))


@callback(Output("pg-trace", "children"), Output("pg-heads", "figure"),
          Output("pg-step-title", "children"), Input("pg-trace-data", "data"),
          Input("pg-step", "value"))
def show_step(data, value):
    trace = ProgramTrace.from_json(data)
    value = int(value or 0)
    titles = step_titles(trace)
    n_heads = len(trace.steps[value].heads) if value < len(trace.steps) else 0
    title = f"step {value + 1} / {len(titles)}: {titles[value]}" + (
        f" · {n_heads} attention head{'s' * (n_heads != 1)}" if n_heads else "")
    return (dash_table(trace_table(trace, value), "pg-trace-table"), head_figure(trace, value),
            title)
