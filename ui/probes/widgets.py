"""Notebook widgets of the probes capability, from the page's figure factories:
``ProbesWidget`` (a run's probe fit: heatmaps, baselines, score over checkpoints) and
``KnowledgeWidget`` (a run's knowledge result: P-probe curves, Q-probe over training, and
across the store the QA table and the Q-probe vs QA scatter). Both read the store on
``refresh()``; a ``KnowledgeWidget`` with ``poll=True`` follows a running knowledge job of its
run until the result is stored."""

from __future__ import annotations

import html as html_text

import ipywidgets
import plotly.graph_objects as go

from probes.knowledge import pretrain_run_of
from ui.live_widget import LiveWidget
from ui.probes.data import (FIT_COMMAND, KNOWLEDGE_COMMAND, Q_TRAINING_EMPTY,
                            SERIES_COMMAND, all_knowledge, fit_results, knowledge_results)
from ui.probes.figures import FitGroup, baseline_lines, fit_summary, group_fits, \
    probe_heatmaps, probe_series
from ui.probes.knowledge_figures import format_cell, knowledge_summary, p_probe_curves, \
    q_over_training, q_vs_qa_scatter, qa_table
from ui.probes.launch import config_of_argv, knowledge_jobs
from workbench.store import RunStore


def replace_figure(target: go.FigureWidget, fig: go.Figure) -> None:
    """Show ``fig`` in the widget ``target`` (traces and layout, empty state included)."""
    with target.batch_update():
        target.data = ()
        target.add_traces(list(fig.data))
        target.layout = fig.layout


class ProbesWidget(LiveWidget):
    """``ProbesWidget("my-run")``: the run's probe fit (``key``: any stored key of the fit, by
    default the first setting); ``.group`` is what is shown."""

    def __init__(self, run_ref: str, *, key: str | None = None, store: RunStore | None = None,
                 interval: float = 1.0):
        store = store or RunStore()
        self.run_id = store.get_run(run_ref).id
        self.key = key
        self.group: FitGroup | None = None
        self.baselines = go.FigureWidget(baseline_lines(empty=FIT_COMMAND))
        self.series = go.FigureWidget(probe_series(empty=SERIES_COMMAND))
        super().__init__(store, interval)
        self.widget.children = (*self.widget.children, ipywidgets.HBox([self.baselines,
                                                                       self.series]))
        self.refresh()

    def build_figure(self) -> go.Figure:
        return probe_heatmaps(empty=f"no probe fit on this run yet: {FIT_COMMAND}")

    def update(self) -> bool:
        groups = group_fits(fit_results(self.store, self.run_id))
        self.group = next((g for g in groups if self.key is None or self.key in g.keys), None)
        if self.group is None:
            self.status.value = (f"<b>{self.run_id}</b> · no probe fit" +
                                 (f" with key {html_text.escape(self.key)}" if self.key else "")
                                 + f": {html_text.escape(FIT_COMMAND)}")
            return False
        latest = self.group.latest
        replace_figure(self.figure, probe_heatmaps(latest))
        replace_figure(self.baselines, baseline_lines(latest))
        replace_figure(self.series, probe_series(
            self.group, empty=f"one checkpoint only; for a series: {SERIES_COMMAND}"))
        self.status.value = (f"<b>{self.run_id}</b> · {html_text.escape(self.group.label)}<br>"
                             f"{html_text.escape(fit_summary(latest))}")
        return False  # a fit is stored whole: nothing more comes


def qa_table_html(entries, current: str | None = None) -> str:
    """The QA table of :func:`ui.probes.knowledge_figures.qa_table` as HTML."""
    columns, rows = qa_table(entries)
    if not rows:
        return ("<i>no knowledge results in the store yet: "
                f"{html_text.escape(KNOWLEDGE_COMMAND)}</i>")
    head = "".join(f"<th>{html_text.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr" + (' style="font-weight:600"' if r["run_id"] == current else "") + ">"
        + "".join(f"<td>{html_text.escape(format_cell(r[c]))}</td>" for c in columns) + "</tr>"
        for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class KnowledgeWidget(LiveWidget):
    """``KnowledgeWidget("my-lm", poll=True)``: the run's knowledge result (``key``; default
    the first), the QA table and Q-probe vs QA scatter of every knowledge result."""

    def __init__(self, run_ref: str, *, key: str | None = None, store: RunStore | None = None,
                 poll: bool = False, interval: float = 2.0):
        store = store or RunStore()
        self.run_id = store.get_run(run_ref).id
        self.key = key
        self.payload: dict | None = None
        self.q_training = go.FigureWidget(q_over_training(empty=Q_TRAINING_EMPTY))
        self.scatter = go.FigureWidget(q_vs_qa_scatter([], empty=KNOWLEDGE_COMMAND))
        self.table = ipywidgets.HTML()
        super().__init__(store, interval)
        self.widget.children = (*self.widget.children, self.q_training, self.table,
                                self.scatter)
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return p_probe_curves(empty=f"no knowledge result on this run: {KNOWLEDGE_COMMAND}")

    def _job_running(self) -> bool:
        for job in knowledge_jobs(self.store):
            cfg = config_of_argv(job.argv)
            run = pretrain_run_of(self.store, cfg) if cfg is not None and not job.done else None
            if run is not None and run.id == self.run_id:
                return True
        return False

    def update(self) -> bool:
        results = knowledge_results(self.store, self.run_id)
        key = self.key if self.key in results else (sorted(results)[0] if results else None)
        self.payload = results.get(key) if key else None
        entries = all_knowledge(self.store)
        self.table.value = qa_table_html(entries, current=self.run_id)
        replace_figure(self.scatter, q_vs_qa_scatter(entries, empty=KNOWLEDGE_COMMAND))
        running = self._job_running()
        if self.payload is None:
            self.status.value = (f"<b>{self.run_id}</b> · "
                                 + ("knowledge job running…" if running else
                                    f"no knowledge result: {html_text.escape(KNOWLEDGE_COMMAND)}"))
            return running
        replace_figure(self.figure, p_probe_curves(self.payload))
        replace_figure(self.q_training, q_over_training(self.payload, empty=Q_TRAINING_EMPTY))
        self.status.value = (f"<b>{self.run_id}</b> · {html_text.escape(key)}<br>"
                             f"{html_text.escape(knowledge_summary(self.payload))}")
        return running
