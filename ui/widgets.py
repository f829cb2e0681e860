"""Notebook widgets: the app's live figures in Jupyter, built by the same figure factories.

``RunWidget("my-run")`` shows a run's train/test curves and progress and, with ``poll=True``
(or :meth:`LiveWidget.start`), keeps appending new metric rows from a background thread while
the run trains. Importing and constructing widgets needs no running kernel (tests build them
headless); display is ipywidgets + Plotly ``FigureWidget`` (anywidget, bundled, no CDN).

:class:`LiveWidget` is the base for other capabilities' widgets: subclass it, implement
``build_figure()`` (from a ``ui.figures`` factory) and ``update()`` (read what is new, update
``self.figure``, return whether more may come), and get refresh/polling/display for free.
"""

from __future__ import annotations

import abc
import threading

import ipywidgets
import plotly.graph_objects as go

from ui.data import poll_run
from ui.figures import CURVE_NAMES, progress_text, rows_to_series, set_log_axes, training_curves
from workbench.store import RunStore


class LiveWidget(abc.ABC):
    """A figure plus a status line that refreshes from the store, optionally by polling."""

    def __init__(self, store: RunStore | None = None, interval: float = 1.0):
        self.store = store or RunStore()
        self.interval = interval
        self.figure = go.FigureWidget(self.build_figure())
        self.status = ipywidgets.HTML()
        self.widget = ipywidgets.VBox([self.status, self.figure])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.live = True

    # -- to implement -----------------------------------------------------------------------
    @abc.abstractmethod
    def build_figure(self) -> go.Figure:
        """The initial figure."""

    @abc.abstractmethod
    def update(self) -> bool:
        """Read what is new into ``self.figure``/``self.status``; False once nothing more comes."""

    # -- refresh and polling ----------------------------------------------------------------
    def refresh(self) -> bool:
        """Update once now; returns whether the source is still live."""
        with self._lock:
            self.live = self.update()
            return self.live

    def start(self, interval: float | None = None) -> "LiveWidget":
        """Poll in a daemon thread every ``interval`` seconds until the source finishes."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        period = self.interval if interval is None else interval

        def loop():
            while not self._stop.is_set():
                try:
                    if not self.refresh():
                        break
                except Exception as exc:  # keep the notebook alive; show why polling stopped
                    self.status.value += f" <b>polling stopped:</b> {type(exc).__name__}: {exc}"
                    break
                self._stop.wait(period)

        self._thread = threading.Thread(target=loop, name=f"{type(self).__name__}-poll",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- display ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


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
        return training_curves(log_x=self._log[0], log_y=self._log[1])

    def set_log_axes(self, *, log_x: bool = False, log_y: bool = False) -> None:
        set_log_axes(self.figure, log_x=log_x, log_y=log_y)

    def update(self) -> bool:
        from ui.data import eta_seconds

        p = poll_run(self.store, self.run_id, since_id=self.last_id, last_step=self.last_step)
        self.last_id, self.last_step = p.last_id, p.last_step
        series = rows_to_series(p.rows)
        if series:
            with self.figure.batch_update():
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
