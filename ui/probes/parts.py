"""Dash pieces the probes pages share (no callbacks): the knowledge launch form, the list of
knowledge jobs with their progress read from the store, the runs holding probe results, and the
QA accuracy table across knowledge results."""

from __future__ import annotations

import json

from dash import dcc, html

from probes.knowledge import pretrain_run_of
from ui.components import status_badge
from ui.figures import progress_text
from ui.polling import poll_run
from ui.probes.data import KNOWLEDGE_COMMAND, probe_runs
from ui.probes.knowledge_figures import format_cell, qa_table
from ui.probes.launch import (DEFAULT_MODEL, DEFAULTS, FIELDS, PROTOCOL_OPTIONS,
                               config_of_argv)
from workbench.store import RunStore

FORM_KEYS = (*FIELDS, "name")
LABELS = {"people": "people", "augmentation": "augmentation", "protocol": "protocol",
          "steps": "pretraining steps", "finetune_steps": "QA finetune steps",
          "probe_steps": "probe steps", "series_checkpoints": "checkpoints probed over training",
          "qa_fraction": "QA fraction (mixed)",
          "vocab_size": "vocabulary size", "batch_size": "batch size", "lr": "learning rate",
          "seed": "seed", "pool_size": "values per attribute (blank: people / 25; 0: all)",
          "model": "model overrides (JSON)", "name": "run name (optional)"}


def _value(key) -> str:
    value = DEFAULTS.get(key, "")
    return "" if value in ({}, None) else str(value)


def knowledge_form() -> html.Div:
    """The form that launches ``workbench probes knowledge run`` (ids ``pb-<field>``)."""

    def row(key):
        if key == "protocol":
            component = dcc.Dropdown(id="pb-protocol", options=PROTOCOL_OPTIONS,
                                     value=DEFAULTS["protocol"], clearable=False,
                                     style={"width": "200px"})
        else:
            component = dcc.Input(id=f"pb-{key}", type="text", value=_value(key),
                                  placeholder=f"overrides of {json.dumps(DEFAULT_MODEL)}"
                                  if key == "model" else None)
        return html.Div([html.Label(LABELS[key], htmlFor=f"pb-{key}"), component,
                         html.Span(id=f"pb-{key}-err", className="field-error")],
                        className="field")

    return html.Div([
        html.H4("Knowledge storage experiment (bioS)"),
        html.Div("augmentation: single, multiM, permute, permuteK, fullname joined by '+' "
                 "(e.g. multi5+permute+fullname)", className="muted"),
        *[row(k) for k in FORM_KEYS],
        html.Button("Launch knowledge job", id="pb-launch", className="btn"),
        html.Div(id="pb-form-error", className="form-error"),
    ], className="card grow")


def _job_progress(store: RunStore, job) -> list:
    """What a knowledge job is doing, from the store: its pretrain run's steps, then the QA
    and probe stage (no per-step progress there), then where its result is."""
    cfg = config_of_argv(job.argv)
    run = pretrain_run_of(store, cfg) if cfg is not None else None
    parts = []
    if run is not None:
        p = poll_run(store, run.id)
        total = p.total_steps or 0
        if job.status == "completed":
            text = "result stored on "
        elif run.status == "completed":
            text = "pretrained; QA and probes running on " if not job.done else "run "
        else:
            text = (progress_text(p.last_step, total, None) if total else "starting") + \
                " of pretraining run "
        parts += [text, dcc.Link(run.name or run.id, href=f"/runs/{run.id}/probes"
                                 if job.status == "completed" else f"/runs/{run.id}/pretrain")]
    elif not job.done:
        parts.append("preparing the biographies and tokens…")
    if job.status in ("failed", "interrupted"):
        tail = [line for line in job.log_tail(5) if line.strip()]
        parts.append(html.Pre("\n".join(tail[-3:]), className="log"))
    return parts


def job_items(store: RunStore, jobs) -> html.Div:
    if not jobs:
        return html.Div(["no knowledge jobs yet: launch one here, or run ",
                         html.Code(KNOWLEDGE_COMMAND)], className="muted")
    items = []
    for job in jobs:
        cfg = config_of_argv(job.argv)
        what = (f"{cfg.people} people · {cfg.augmentation} · {cfg.protocol} · {cfg.steps} steps"
                if cfg is not None else " ".join(job.argv))
        items.append(html.Li([status_badge(job.status), f" {job.id}: {what} · ",
                              *_job_progress(store, job)], className="pb-job"))
    return html.Ul(items, id="pb-job-list")


def runs_list(store: RunStore) -> html.Div:
    runs = probe_runs(store)
    if not runs:
        return html.Div(["no probe results yet: ", html.Code(KNOWLEDGE_COMMAND), " or ",
                         html.Code("workbench probes fit ACTS --target COLUMN")],
                        className="muted")
    return html.Ul([html.Li([dcc.Link(run.name or run.id, href=f"/runs/{run.id}/probes"),
                             f" · {run.kind} · {_count(fits, 'probe fit')} · "
                             f"{_count(knowledge, 'knowledge result')}"])
                    for run, fits, knowledge in runs], id="pb-runs-list")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def qa_table_component(entries, element_id: str = "pb-qa-table", current: str | None = None):
    """The held-out QA accuracy table (rows of :func:`ui.probes.knowledge_figures.qa_table`);
    ``current`` (a run id) marks that run's rows."""
    columns, rows = qa_table(entries)
    if not rows:
        return html.Div(["no knowledge results in the store yet: ", html.Code(KNOWLEDGE_COMMAND)],
                        className="muted", id=element_id)
    head = html.Tr([html.Th(c, className="num" if i > 4 else None)
                    for i, c in enumerate(columns)])
    body = []
    for r in rows:
        cells = [html.Td(dcc.Link(r["run"], href=f"/runs/{r['run_id']}/probes"))]
        cells += [html.Td(format_cell(r[c]), className="num" if i > 3 else None)
                  for i, c in enumerate(columns[1:])]
        body.append(html.Tr(cells, style={"fontWeight": 600} if r["run_id"] == current
                            else None))
    return html.Table([html.Thead(head), html.Tbody(body)], className="runs", id=element_id)
