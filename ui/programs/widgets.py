"""Notebook widget of a Transformer Program run: the program page's views in Jupyter.

``ProgramWidget("my-program")`` shows the run's training progress (loss and Gumbel temperature
per epoch; live with ``poll=True`` while it trains) and, once trained, the decompiled program
(syntax-highlighted), an input box with a layer stepper — the trace table (every variable's value
at every position) and one heatmap per attention head (which key each query selected) — and the
unembedding table. Every view comes from the factories in :mod:`ui.programs.figures` that the
browser page uses; the data comes from :mod:`programs.inspect`. Constructing it needs no kernel,
so tests read the same data the widget shows (:attr:`trace`, :meth:`table`, :meth:`selection`).
"""

from __future__ import annotations

import html

import ipywidgets
import plotly.graph_objects as go

from programs.inspect import ProgramTrace, example_text, tokenize, trace_program, unembedding
from ui.programs.figures import (PROGRESS_SERIES, Table, code_html, head_figure, progress_label,
                                rows_to_history, step_titles, table_html, trace_table,
                                training_figure, unembedding_table)
from ui.figures import clear_empty_state
from ui.live_widget import LiveWidget
from workbench.errors import UserError
from workbench.store import RunStore

TERMINAL = ("completed", "failed", "cancelled")


class ProgramWidget(LiveWidget):
    """Progress, code, step-through trace and unembedding of one program run.

    ``run_ref`` is a run id or name; ``text`` the first input (default: a test input of the
    run). :meth:`set_input` and :meth:`show_step` drive it from code, as the input box and the
    slider do from the notebook.
    """

    def __init__(self, run_ref: str, *, store: RunStore | None = None, text: str | None = None,
                 poll: bool = False, interval: float = 1.0):
        store = store or RunStore()
        run = store.get_run(run_ref)
        if run.kind != "program":
            raise UserError(f"run {run_ref!r} is a {run.kind!r} run, not a Transformer Program")
        self.run_id = run.id
        self.last_id, self.epoch, self.loss = 0, None, None
        self.loaded = self.source = self.trace = None
        self.step = 0
        self._first_text = text
        self.inspector = ipywidgets.VBox()
        super().__init__(store, interval)
        self.widget = ipywidgets.VBox([self.status, ipywidgets.Accordion(
            children=[self.figure], titles=("training",)), self.inspector])
        self.refresh()
        if poll and self.live:
            self.start()

    # -- LiveWidget ----------------------------------------------------------------------------
    def build_figure(self) -> go.Figure:
        return training_figure(empty="waiting for the first epoch")

    def update(self) -> bool:
        run = self.store.get_run(self.run_id)
        rows = self.store.metrics(self.run_id, since_id=self.last_id)
        if rows:
            self.last_id = rows[-1][0]
            history = rows_to_history(rows)
            with self.figure.batch_update():
                clear_empty_state(self.figure)
                for i, name in enumerate(PROGRESS_SERIES):
                    pts = history.get(name, [])
                    if pts:
                        trace = self.figure.data[i]
                        trace.x = tuple(trace.x or ()) + tuple(s + 1 for s, _ in pts)
                        trace.y = tuple(trace.y or ()) + tuple(v for _, v in pts)
            if history.get("loss"):
                self.epoch, self.loss = history["loss"][-1][0] + 1, history["loss"][-1][1]
        total = ((run.config or {}).get("program") or {}).get("epochs")
        label = progress_label(self.epoch, total, run.status, self.loss)
        summary = run.summary or {}
        acc = summary.get("test_acc")
        extra = f" · test_acc {acc:.4f}" if isinstance(acc, float) else ""
        self.status.value = (f"<b>{run.name or run.id}</b> · program · {run.task} · {label}"
                             f"{extra}")
        if run.status == "completed" and self.loaded is None:
            self._build_inspector()
        return run.status not in TERMINAL

    # -- the inspector ---------------------------------------------------------------------------
    def _build_inspector(self) -> None:
        from programs.api import load_run
        from programs.decompile import decompile
        self.loaded = load_run(self.run_id, self.store)
        self.source = decompile(self.loaded.program,
                                title=f"Transformer Program for {self.loaded.task}")
        shape = self.loaded.program.shape
        self.input_box = ipywidgets.Text(value=self._first_text or example_text(
            self.loaded.program, self.loaded.x_test if len(self.loaded.x_test)
            else self.loaded.x_train),
                                         description="input", continuous_update=False)
        self.error = ipywidgets.HTML()
        self.trace = trace_program(self.loaded.program, tokenize(self.input_box.value, shape))
        titles = step_titles(self.trace)
        self.slider = ipywidgets.SelectionSlider(options=[(t, i) for i, t in enumerate(titles)],
                                                 value=0, description="step")
        self.table_view = ipywidgets.HTML()
        self.heads = go.FigureWidget(head_figure(self.trace, 0))
        self.heads_box = ipywidgets.Box([self.heads])
        self.code = ipywidgets.HTML(f"<div style='max-height:520px;overflow:auto;"
                                    f"font-size:12px'>{code_html(self.source)}</div>")
        self.unembed = ipywidgets.HTML(table_html(unembedding_table(
            unembedding(self.loaded.program))))
        self.input_box.observe(lambda change: self._typed(change["new"]), names="value")
        self.slider.observe(lambda change: self.show_step(change["new"]), names="value")
        tabs = ipywidgets.Tab(children=[
            ipywidgets.VBox([ipywidgets.HTML(f"vocabulary: {' '.join(shape.input_vocab)}"),
                             self.input_box, self.error, self.slider, self.table_view,
                             self.heads_box]),
            self.code, self.unembed], titles=("trace", "program", "unembedding"))
        self.inspector.children = (tabs,)
        self.show_step(0)

    def _typed(self, text: str) -> None:
        try:
            self.set_input(text)
        except UserError:
            pass  # set_input shows the message; the previous trace stays

    def set_input(self, text: str) -> ProgramTrace:
        """Trace ``text`` (tokens separated by spaces); unknown tokens raise and are shown."""
        self._require()
        try:
            tokens = tokenize(text, self.loaded.program.shape)
        except UserError as exc:
            self.error.value = f"<span style='color:#b3261e'>{html.escape(str(exc))}</span>"
            raise
        self.error.value = ""
        self.trace = trace_program(self.loaded.program, tokens)
        if self.input_box.value != text:
            self.input_box.value = text
        self.show_step(0)
        return self.trace

    def show_step(self, step: int) -> None:
        """Show step ``step`` (0 embeddings, 1.. layers, last the output)."""
        self._require()
        self.step = max(0, min(int(step), len(self.trace.steps)))
        if self.slider.value != self.step:
            self.slider.value = self.step
        self.table_view.value = table_html(trace_table(self.trace, self.step))
        self.heads = go.FigureWidget(head_figure(self.trace, self.step))
        self.heads_box.children = (self.heads,)

    # -- data accessors (what the views show) --------------------------------------------------
    def table(self, step: int | None = None) -> Table:
        """The trace table at ``step`` (default: the step shown)."""
        self._require()
        return trace_table(self.trace, self.step if step is None else step)

    def selection(self, head: str) -> list[int | None]:
        """Key position each query selected in categorical head ``head`` (None: numerical)."""
        self._require()
        for s in self.trace.steps:
            for h in s.heads:
                if h.name == head:
                    return h.chosen
        raise KeyError(head)

    def unembedding_table(self) -> Table:
        self._require()
        return unembedding_table(unembedding(self.loaded.program))

    def _require(self) -> None:
        if self.trace is None:
            raise UserError(f"run {self.run_id} has not finished training; call refresh() or "
                            "start() and wait")
