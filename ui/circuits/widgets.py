"""Notebook widgets for circuits, drawn by the same factories as the browser page
(:mod:`ui.circuits.figures`).

- ``CircuitWidget("r-…")``: the layered circuit graph of a stored ``circuits`` run (a plotly
  ``FigureWidget``) with a sparsity slider that re-extracts from the stored mask parameters
  (:func:`circuits.explore.reextract`, no retraining); ``node_edges(node)`` and
  ``ablate(node)`` mirror the page's node panel.
- ``SearchWidget("r-…", poll=True)``: live KL / sparsity / λ of a running search (polls only
  new metric rows, like the page).
- ``CurvesWidget(summary)``: faithfulness-vs-edges curves per method from a sweep's
  ``summary.json`` (path, sweep directory, or the rows themselves).

Constructing them needs no kernel; tests build them headless and read their data.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets
import plotly.graph_objects as go

from circuits.explore import ablate_node, load_stored, node_edges, reextract
from ui.circuits.figures import (SEARCH_NAMES, circuit_figure, circuit_layout,
                                faithfulness_curves, faithfulness_series, rows_to_search_series,
                                search_progress)
from ui.figures import clear_empty_state
from ui.live_widget import LiveWidget
from workbench.store import RunStore


class CircuitWidget:
    """A stored circuit as a layered graph, with a sparsity slider when masks were stored."""

    def __init__(self, run_ref: str, *, store: RunStore | None = None,
                 sparsity: float | None = None):
        self.store = store or RunStore()
        self.stored = load_stored(run_ref, self.store)
        self.run_id = self.stored.run_id
        self.circuit = reextract(self.stored, sparsity)
        self.figure = go.FigureWidget(self._figure())
        start = sparsity if sparsity is not None else \
            1 - len(self.stored.circuit.edges) / self.stored.graph.n_edges
        self.slider = ipywidgets.FloatSlider(
            value=round(start, 3), min=0.0, max=1.0, step=0.005, description="sparsity",
            continuous_update=False, readout_format=".3f",
            disabled=not self.stored.can_reextract)
        self.slider.observe(lambda change: self.set_sparsity(change["new"]), names="value")
        self.status = ipywidgets.HTML(self._status())
        self.widget = ipywidgets.VBox([self.status, self.slider, self.figure])

    def _figure(self) -> go.Figure:
        self.layout = circuit_layout(self.circuit)
        meta = self.circuit.meta
        return circuit_figure(self.layout, title=f"{meta.get('method', '')} circuit · "
                                                 f"{len(self.circuit.edges)} edges")

    def _status(self) -> str:
        g = self.stored.graph
        m = self.stored.circuit.meta
        return (f"<b>{self.run_id}</b> · {m.get('method')} on {m.get('model')} / "
                f"{m.get('task')} · {len(self.circuit.edges)} / {g.n_edges} edges")

    def set_sparsity(self, sparsity: float) -> None:
        """Re-extract at ``sparsity`` and redraw (the slider calls this)."""
        self.circuit = reextract(self.stored, float(sparsity))
        new = self._figure()
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(list(new.data))
            self.figure.layout.title = new.layout.title
        self.status.value = self._status()

    @property
    def n_edges(self) -> int:
        return len(self.circuit.edges)

    @property
    def edges(self) -> list[str]:
        return sorted(self.circuit.edges)

    def node_edges(self, node: str) -> tuple[list[str], list[str]]:
        return node_edges(self.circuit, node)

    def ablate(self, node: str, n_examples: int = 64) -> dict:
        """Effect of ablating ``node`` in the full model and in the shown circuit."""
        return ablate_node(self.stored, node, circuit=self.circuit, store=self.store,
                           n_examples=n_examples).to_json()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class SearchWidget(LiveWidget):
    """Live KL, sparsity (vs target) and λ of a circuit search run."""

    def __init__(self, run_ref: str, *, store: RunStore | None = None, poll: bool = False,
                 interval: float = 1.0):
        store = store or RunStore()
        self.run_id = store.get_run(run_ref).id
        self.last_id = 0
        super().__init__(store, interval)
        self.refresh()
        if poll and self.live:
            self.start()

    def build_figure(self) -> go.Figure:
        return search_progress(empty="waiting for the search's first step")

    def update(self) -> bool:
        rows = self.store.metrics(self.run_id, since_id=self.last_id)
        if rows:
            self.last_id = rows[-1][0]
        series = rows_to_search_series(rows)
        if series:
            with self.figure.batch_update():
                clear_empty_state(self.figure)
                for i, name in enumerate(SEARCH_NAMES):
                    if name in series:
                        trace = self.figure.data[i]
                        xs, ys = series[name]
                        trace.x = tuple(trace.x or ()) + tuple(xs)
                        trace.y = tuple(trace.y or ()) + tuple(ys)
        run = self.store.get_run(self.run_id)
        total = ((run.config or {}).get("search") or {}).get("steps")
        step = max(self.series("sparsity")[0] or (0,))
        self.status.value = (f"<b>{run.name or run.id}</b> · {run.task} · {run.status}"
                             + (f" · step {step} / {total}" if total else ""))
        return run.status not in ("completed", "failed", "cancelled")

    def series(self, name: str) -> tuple[tuple, tuple]:
        trace = self.figure.data[SEARCH_NAMES.index(name)]
        return tuple(trace.x or ()), tuple(trace.y or ())


def load_summary(source) -> list[dict]:
    """Sweep rows from a ``summary.json`` path, a sweep directory, or a list of rows."""
    if isinstance(source, list):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / "summary.json"
    rows = json.loads(path.read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path} is not a sweep summary (expected a list of rows)")
    return rows


class CurvesWidget:
    """Faithfulness (KL) vs number of edges, one curve per method/model/task."""

    def __init__(self, summary, *, log_y: bool = True):
        self.rows = load_summary(summary)
        self.figure = go.FigureWidget(faithfulness_curves(self.rows, log_y=log_y))
        self.widget = self.figure

    def series(self) -> dict[str, list[tuple[int, float]]]:
        return faithfulness_series(self.rows)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
