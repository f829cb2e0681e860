"""Notebook widget of the Fourier analysis: the page's figures as plotly ``FigureWidget`` s, drawn
by the same factories (:mod:`ui.fourier.figures`; for sparse-parity and group-composition runs
:mod:`ui.fourier.task_figures`).

``FourierWidget("my-run")`` reads the cached ``workbench fourier RUN --checkpoint all`` analysis
from the store; ``compute()`` starts it as a job (as the page does) and, with ``poll=True``,
the widget follows the job and draws the figures when it ends. ``set_step(i)`` (or the slider)
scrubs through checkpoints, ``set_neuron(j)`` (or the dropdown) picks the neuron heatmap
(modular runs only; parity and group runs show their task's figures, ``TASK_FIGURES``).
Constructing it needs no kernel: tests build it headless and read its figures.
"""

from __future__ import annotations

import ipywidgets
import plotly.graph_objects as go

from ui.fourier.figures import (explained_histogram, logit_map, neuron_heatmap, norm_bars,
                                phase_curves, progress_measures)
from ui.fourier.task_figures import TASK_FIGURES, task_figures
from ui.figures import empty_state
from ui.live_widget import LiveWidget
from workbench.fourier.task_runs import TASKS
from workbench.fourier.views import (analysis_state, checkpoint_report, checkpoint_views,
                                     start_analysis)
from workbench.store import RunStore

FIGURES = ("curves", "norms", "histogram", "neuron", "logits", "measures")


class FourierWidget(LiveWidget):
    """Fourier figures of one run, with a checkpoint slider (and, for modular runs, a neuron
    picker)."""

    def __init__(self, run_ref: str, *, store: RunStore | None = None, poll: bool = False,
                 interval: float = 1.0):
        store = store or RunStore()
        run = store.get_run(run_ref)
        self.run_id, self.task = run.id, run.task
        self.series: dict | None = None
        self.steps: list[int] = []
        self.step_index = 0
        self.neuron = 0
        super().__init__(store, interval)
        names = TASK_FIGURES[self.task] if self.task in TASKS else FIGURES[1:]
        self.figures = {"curves": self.figure, **{name: go.FigureWidget() for name in names}}
        self.slider = ipywidgets.IntSlider(min=0, max=0, value=0, description="checkpoint",
                                           continuous_update=False)
        self.slider.observe(lambda c: self.set_step(c["new"]), names="value")
        self.neuron_picker = ipywidgets.Dropdown(options=[], description="neuron")
        self._syncing = False  # set while the code, not the user, moves the controls
        self.neuron_picker.observe(lambda c: self._syncing or c["new"] is None or
                                   self.set_neuron(c["new"]), names="value")
        if self.task in TASKS:
            body = [self.figures[name] for name in names]
        else:
            body = [ipywidgets.HBox([self.figures["norms"], self.figures["histogram"]]),
                    self.neuron_picker,
                    ipywidgets.HBox([self.figures["neuron"], self.figures["logits"]]),
                    self.figures["measures"]]
        self.widget = ipywidgets.VBox([self.status, self.figures["curves"], self.slider, *body])
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return empty_state(phase_curves(None, None), "not computed yet: call compute()")

    def compute(self, *, poll: bool = True, env: dict[str, str] | None = None):
        """Start the analysis job (``workbench fourier RUN --checkpoint all``)."""
        return self.follow(start_analysis(self.store, self.run_id, env=env), poll)

    def update(self) -> bool:
        state = analysis_state(self.store, self.run_id)
        if state.running:
            p = state.progress or {}
            self.status.value = (f"<b>{self.run_id}</b> · computing · checkpoint "
                                 f"{p.get('done', 0)} / {p.get('total') or '?'}")
            return True
        if state.series is None:
            failed = state.job is not None and state.job.status != "completed"
            self.status.value = (f"<b>{self.run_id}</b> · " +
                                 (f"the analysis job {state.job.status}" if failed else
                                  "not computed yet: call <code>compute()</code>"))
            return False
        if state.series is not self.series:
            self._load(state.series)
        note = " · new checkpoints since: compute() again" if state.stale else ""
        found = (f"parity set {state.series.get('detected_support')}"
                 if self.task == "sparse-parity" else
                 f"key irreps {state.series.get('key_irreps')}" if self.task in TASKS else
                 f"key frequencies {state.series.get('key_frequencies')}")
        self.status.value = (f"<b>{self.run_id}</b> · {found} · "
                             f"{len(self.steps)} checkpoints{note}")
        return False

    # -- drawing ----------------------------------------------------------------------------
    def _set(self, name: str, fig: go.Figure) -> None:
        target = self.figures[name]
        with target.batch_update():
            target.data = ()
            target.add_traces(list(fig.data))
            target.layout = fig.layout

    def _load(self, series: dict) -> None:
        self.series = series
        self.steps = [r["step"] for r in series.get("checkpoints", [])]
        self._set("curves", phase_curves(self.store.metric_history(self.run_id),
                                         series.get("phases")))
        nfs = checkpoint_report(series).get("neuron_frequencies") or []
        self.neuron = max(range(len(nfs)), key=lambda i: nfs[i]["explained_fraction"]) \
            if nfs else 0
        self.slider.max = max(len(self.steps) - 1, 0)
        self.step_index = len(self.steps) - 1
        self.slider.value = self.step_index
        self._draw_step()

    def _draw_step(self) -> None:
        step = self.steps[self.step_index]
        if self.task in TASKS:
            for name, fig in task_figures(self.series, step).items():
                self._set(name, fig)
            return
        report = checkpoint_report(self.series, step)
        nfs = report.get("neuron_frequencies") or []
        self._set("norms", norm_bars(report, self.series.get("key_frequencies")))
        self._set("histogram", explained_histogram([n["explained_fraction"] for n in nfs]))
        self._set("measures", progress_measures(self.series, step))
        self._syncing = True
        try:
            self.neuron_picker.options = [(f"{i} · k={n['frequency']}", i)
                                          for i, n in enumerate(nfs)]
            self.neuron_picker.value = self.neuron if nfs else None
        finally:
            self._syncing = False
        views = checkpoint_views(self.store, self.run_id, step)
        self._set("logits", logit_map(views.logit_map))
        self._draw_neuron(report, views)

    def _draw_neuron(self, report=None, views=None) -> None:
        step = self.steps[self.step_index]
        report = report or checkpoint_report(self.series, step)
        views = views or checkpoint_views(self.store, self.run_id, step)
        nfs = report.get("neuron_frequencies") or []
        nf = nfs[self.neuron] if self.neuron < len(nfs) else {}
        self._set("neuron", neuron_heatmap(views.neuron(self.neuron), self.neuron,
                                           frequency=nf.get("frequency"),
                                           fraction=nf.get("explained_fraction")))

    def set_step(self, index: int) -> None:
        """Show checkpoint number ``index`` (0 = the first) in every per-checkpoint figure."""
        if self.series is None or not 0 <= int(index) < len(self.steps):
            return
        if int(index) != self.step_index:
            self.step_index = int(index)
            if self.slider.value != self.step_index:
                self.slider.value = self.step_index
            self._draw_step()

    def set_neuron(self, neuron: int) -> None:
        if self.series is None or self.task in TASKS or int(neuron) == self.neuron:
            return
        self.neuron = int(neuron)
        if self.neuron_picker.value != self.neuron:
            self._syncing = True
            try:
                self.neuron_picker.value = self.neuron
            finally:
                self._syncing = False
        self._draw_neuron()

    @property
    def step(self) -> int | None:
        return self.steps[self.step_index] if self.steps else None


__all__ = ["FourierWidget"]
