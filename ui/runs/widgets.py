"""Notebook widget of a training run: its live train/test curves and progress, drawn by the
same figure factories as the run page (:mod:`ui.figures`).

``RunWidget("my-run")`` shows a run's curves and progress and, with ``poll=True`` (or
:meth:`~ui.live_widget.LiveWidget.start`), keeps appending new metric rows from a background
thread while the run trains.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ui.figures import (CURVE_NAMES, clear_empty_state, progress_text, rows_to_series,
                        set_log_axes, training_curves)
from ui.live_widget import LiveWidget
from ui.polling import eta_seconds, poll_run
from workbench.store import RunStore


class RunWidget(LiveWidget):
    """Live train/test loss and accuracy curves of one run, with its progress.

    ``run_ref`` is a run id or name. ``poll=True`` starts polling at once if the run has not
    finished; ``refresh()`` updates by hand. Only metric rows newer than the last one seen are
    read on each refresh.
    """

    def __init__(self, run_ref: str, *, store: RunStore | None = None, poll: bool = False,
                 interval: float = 1.0, log_x: bool = False, log_y: bool = False):
        store = store or RunStore()
        self.run_id = store.get_run(run_ref).id
        self._log = (log_x, log_y)
        self.last_id = 0
        self.last_step = 0
        self._eta: dict = {}
        super().__init__(store, interval)
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return training_curves(log_x=self._log[0], log_y=self._log[1],
                               empty="no metrics yet: they appear as the run evaluates")

    def set_log_axes(self, *, log_x: bool = False, log_y: bool = False) -> None:
        set_log_axes(self.figure, log_x=log_x, log_y=log_y)

    def update(self) -> bool:
        p = poll_run(self.store, self.run_id, since_id=self.last_id, last_step=self.last_step)
        self.last_id, self.last_step = p.last_id, p.last_step
        series = rows_to_series(p.rows)
        if series:
            with self.figure.batch_update():
                clear_empty_state(self.figure)
                for i, name in enumerate(CURVE_NAMES):
                    if name in series:
                        trace = self.figure.data[i]
                        xs, ys = series[name]
                        trace.x = tuple(trace.x or ()) + tuple(xs)
                        trace.y = tuple(trace.y or ()) + tuple(ys)
        self.run_status = p.run.status
        total = p.total_steps or 0
        if p.run.status == "completed":
            label = progress_text(total, total, None)
        else:
            eta = eta_seconds(self._eta, p.last_step, total) if not p.finished else None
            label = progress_text(p.last_step, total, eta) if total else ""
        name = p.run.name or p.run.id
        self.status.value = f"<b>{name}</b> · {p.run.task} · {p.run.status} · {label}"
        return not p.finished

    def series(self, name: str) -> tuple[tuple, tuple]:
        """(steps, values) currently plotted for metric ``name`` (e.g. ``"test_acc"``)."""
        trace = self.figure.data[CURVE_NAMES.index(name)]
        return tuple(trace.x or ()), tuple(trace.y or ())
