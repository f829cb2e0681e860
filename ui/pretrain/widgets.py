"""Notebook widget of a pretraining run: the page's loss / tokens/s / MFU figure
(:mod:`ui.pretrain.figures`) and device line, refreshed from the store (``poll=True`` to follow
a running job)."""

from __future__ import annotations

import plotly.graph_objects as go

from ui.figures import clear_empty_state, progress_text
from ui.live_widget import LiveWidget
from ui.polling import poll_run
from ui.pretrain.figures import PRETRAIN_NAMES, device_text, pretrain_curves, \
    rows_to_pretrain_series
from workbench.store import RunStore


class PretrainWidget(LiveWidget):
    """``PretrainWidget("my-lm", poll=True)``: live curves of one pretraining run."""

    def __init__(self, run_ref: str, *, store: RunStore | None = None, poll: bool = False,
                 interval: float = 1.0):
        store = store or RunStore()
        self.run_id = store.get_run(run_ref).id
        self.last_id = self.last_step = 0
        super().__init__(store, interval)
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return pretrain_curves(empty="no metrics yet: they appear every log_every steps")

    def update(self) -> bool:
        p = poll_run(self.store, self.run_id, since_id=self.last_id, last_step=self.last_step)
        self.last_id, self.last_step = p.last_id, p.last_step
        series = rows_to_pretrain_series(p.rows)
        if series:
            with self.figure.batch_update():
                clear_empty_state(self.figure)
                for i, name in enumerate(PRETRAIN_NAMES):
                    if name in series:
                        trace = self.figure.data[i]
                        trace.x = tuple(trace.x or ()) + tuple(series[name][0])
                        trace.y = tuple(trace.y or ()) + tuple(series[name][1])
        total = p.total_steps or 0
        device = device_text(self.store.get_result(self.run_id, "pretrain", "device"))
        self.status.value = (f"<b>{p.run.name or p.run.id}</b> · {p.run.status} · "
                             f"{progress_text(p.last_step, total, None) if total else ''}"
                             f"<br>{device}")
        return not p.finished

    def series(self, name: str) -> tuple[tuple, tuple]:
        trace = self.figure.data[PRETRAIN_NAMES.index(name)]
        return tuple(trace.x or ()), tuple(trace.y or ())
