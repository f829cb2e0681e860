"""The base of every notebook widget: a figure plus a status line that refreshes from the store,
by hand (:meth:`LiveWidget.refresh`) or from a background thread (:meth:`LiveWidget.start`).

Subclass it, implement ``build_figure()`` (from the capability's figure factory) and
``update()`` (read what is new, update ``self.figure``/``self.status``, return whether more may
come), and get refresh, polling and display for free. Importing and constructing widgets needs
no running kernel (tests build them headless); display is ipywidgets + Plotly ``FigureWidget``
(anywidget, bundled, no CDN).
"""

from __future__ import annotations

import abc
import threading

import ipywidgets
import plotly.graph_objects as go

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

    def follow(self, job, poll: bool = True):
        """Show a job this widget just launched: refresh now and, with ``poll``, keep polling
        until it is done; returns ``job``."""
        self.refresh()
        if poll:
            self.start()
        return job

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
