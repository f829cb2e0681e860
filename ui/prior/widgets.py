"""Notebook widget of a run's prior localisation: the page's four figures (:mod:`ui.prior.
figures`: accuracy by prior bin, error vs prior, R² by layer, before / after finetuning) from the
results stored on the run (:mod:`ui.prior.results`), refreshed from the store.

``PriorWidget("my-lm")`` shows the newest stored analysis and the newest finetune made from the
run (a ``prior-finetune`` run shows its own); ``analyse(task=...)`` / ``finetune(...)`` start
``workbench probes prior`` / ``prior-finetune`` as jobs, checked as the page checks them, and
with ``poll=True`` the widget follows them and redraws when their results land. Constructing it
needs no kernel: tests build it headless and read its figures.
"""

from __future__ import annotations

import ipywidgets
import plotly.graph_objects as go

from ui.live_widget import LiveWidget
from ui.prior.figures import (accuracy_by_bin, error_vs_prior, finetune_comparison,
                              r2_by_layer, summary_lines)
from ui.prior.launch import check_form, launch, prior_jobs
from ui.prior.results import FINETUNE_RUN_KIND, analyses, finetune_result, finetune_runs
from workbench.errors import UserError
from workbench.store import RunStore

FIGURES = ("bins", "scatter", "r2", "finetune")


class PriorWidget(LiveWidget):
    """Prior-localisation figures of one run (``split="values"`` for the R² split by answer
    value; ``key`` picks a stored analysis, default the newest)."""

    def __init__(self, run_ref: str, *, store: RunStore | None = None, poll: bool = False,
                 split: str = "prompts", key: str | None = None, interval: float = 1.0):
        store = store or RunStore()
        run = store.get_run(run_ref)
        self.run_id, self.ref, self.kind = run.id, run.name or run.id, run.kind
        self.split, self.key = split, key
        self.analysis: dict | None = None
        self.finetune_result: dict | None = None
        self.finetune_id: str | None = None
        super().__init__(store, interval)
        self.figures = {"bins": self.figure,
                        **{name: go.FigureWidget() for name in FIGURES[1:]}}
        self.widget = ipywidgets.VBox([
            self.status, ipywidgets.HBox([self.figures["bins"], self.figures["scatter"]]),
            self.figures["r2"], self.figures["finetune"]])
        self._drawn: tuple | None = None
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return accuracy_by_bin(None, empty=self._no_analysis())

    def _no_analysis(self) -> str:
        return f"no prior analysis yet: analyse(task=...) or  workbench probes prior " \
               f"{self.ref} --task count"

    def _no_finetune(self) -> str:
        return f"no finetune yet: finetune(task=...) or  workbench probes prior-finetune " \
               f"{self.ref} --task count"

    # -- jobs -------------------------------------------------------------------------------
    def analyse(self, task: str = "count", *, n: int = 600, values: str = "",
                poll: bool = True, env: dict | None = None):
        """Start ``workbench probes prior RUN --task TASK`` as a job (``values``: a comma list
        the task is restricted to; ``UserError`` on bad input, nothing started)."""
        return self._launch("prior", dict(model=self.run_id, task=task, n=n, values=values),
                            poll, env)

    def finetune(self, task: str = "count", *, layers: str = "auto", steps: int | None = None,
                 held_out: str = "", n: int = 600, name: str = "", trainable: str = "",
                 rank: int | None = None, values: str = "", lr: float | None = None,
                 kl_weight: float | None = None, poll: bool = True, env: dict | None = None):
        """Start ``workbench probes prior-finetune RUN --task TASK ...`` as a job (unset
        values: the CLI's defaults)."""
        form = dict(model=self.run_id, task=task, layers=layers, steps=steps,
                    held_out=held_out, n=n, name=name, trainable=trainable, rank=rank,
                    values=values, lr=lr, kl_weight=kl_weight)
        return self._launch("prior-finetune", form, poll, env)

    def _launch(self, command, values, poll, env):
        checked = check_form(self.store, command, values)
        if not checked.ok:
            raise UserError("; ".join(checked.errors.values()))
        return self.follow(launch(self.store, checked.argv, env=env), poll)

    # -- refresh ----------------------------------------------------------------------------
    def update(self) -> bool:
        stored = analyses(self.store, self.run_id)
        key = self.key if self.key in stored else (list(stored)[-1] if stored else None)
        self.analysis = stored.get(key) if key else None
        run = self.store.get_run(self.run_id)
        source = run if run.kind == FINETUNE_RUN_KIND else \
            next(iter(finetune_runs(self.store, self.run_id)), None)
        self.finetune_id = source.id if source else None
        self.finetune_result = finetune_result(self.store, source) if source else None
        drawn = (key, self.split, repr(self.analysis), repr(self.finetune_result))
        if drawn != self._drawn:
            self._draw()
            self._drawn = drawn
        jobs = prior_jobs(self.store, self.run_id)
        running = [j for j in jobs if not j.done]
        lines = summary_lines(self.analysis) or ["no prior analysis stored yet"]
        job_line = f"{len(running)} prior job(s) running" if running else \
            (f"last job {jobs[0].argv[1]}: {jobs[0].status}" if jobs else "")
        self.status.value = f"<b>{self.ref}</b> · " + "<br>".join(lines + [job_line])
        return bool(running)

    def set_split(self, split: str) -> None:
        """Show the R² split by ``"prompts"`` or by answer ``"values"``."""
        self.split = split
        self.refresh()

    def _set(self, name: str, fig: go.Figure) -> None:
        target = self.figures[name]
        with target.batch_update():
            target.data = ()
            target.add_traces(list(fig.data))
            target.layout = fig.layout

    def _draw(self) -> None:
        empty = self._no_analysis()
        self._set("bins", accuracy_by_bin(self.analysis, empty=empty))
        self._set("scatter", error_vs_prior(self.analysis, empty=empty))
        self._set("r2", r2_by_layer(self.analysis, split=self.split, empty=empty))
        self._set("finetune", finetune_comparison(self.finetune_result,
                                                  empty=self._no_finetune()))
