"""Figure and table factories of the Transformer Program views, shared by the browser page
(``ui/programs/run_page.py``) and the notebook widget (:mod:`ui.programs.widgets`).

Figures are plain ``plotly.graph_objects.Figure`` objects. Tables are :class:`Table` values
(header, cells, per-row classes and optional cell shading); the page renders them as Dash
``html.Table`` and the widget as an HTML string (:func:`table_html`), so both show the same data.
Inputs are the JSON-able results of :mod:`programs.inspect`.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass, field

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from programs.inspect import ProgramTrace, UnembeddingTable
from ui.figures import empty_state

PROGRESS_SERIES = ("loss", "temperature")  # trace order of training_figure()
HEADS_PER_ROW = 4


@dataclass
class Table:
    columns: list[str]
    rows: list[list]  # cell values (str, int or float)
    row_class: list[str] = field(default_factory=list)  # per row: "", "new", "dead", "output"
    shade: list[list[float | None]] | None = None  # per cell, -1..1 (diverging colour) or None
    title: str = ""

    def column(self, name: str) -> list:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def row(self, first_cell) -> list:
        return next(r for r in self.rows if r[0] == first_cell)


def step_titles(trace: ProgramTrace) -> list[str]:
    """The stepper's positions: embeddings, each layer, then the output."""
    return [s.title for s in trace.steps] + ["output"]


def _position_headers(trace: ProgramTrace) -> list[str]:
    return [f"{i}: {t}" for i, t in enumerate(trace.tokens)]


def trace_table(trace: ProgramTrace, step: int) -> Table:
    """Every variable computed up to ``step`` (rows) at every position (columns).

    Rows written in ``step`` have class ``new``; rows of modules the exported program prunes
    have class ``dead``; the output step adds the ``prediction`` row.
    """
    last = len(trace.steps)
    step = max(0, min(step, last))
    rows, classes = [], []
    for i, s in enumerate(trace.steps[:step + 1]):
        for v in s.variables:
            rows.append([v.name, v.source, *v.values])
            classes.append("new" if i == step else ("" if v.live else "dead"))
            if i == step and not v.live:
                classes[-1] = "new dead"
    if step == last:
        rows.append(["prediction", "argmax of the unembedding", *trace.predictions])
        classes.append("output")
    return Table(columns=["variable", "written by", *_position_headers(trace)], rows=rows,
                 row_class=classes, title=step_titles(trace)[step])


def head_figure(trace: ProgramTrace, step: int, *, height: int = 260) -> go.Figure:
    """One heatmap per attention head of ``step``: query position (rows) x key position.

    Categorical heads: 1 at the key each query attends to (0.5 when nothing matched and the head
    fell back to BOS); numerical heads: 1 at every matching key (their values are summed).
    """
    heads = trace.steps[step].heads if 0 <= step < len(trace.steps) else []
    if not heads:
        fig = go.Figure()
        fig.add_annotation(text="no attention heads in this step", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper", font={"color": "#6b7280"})
        fig.update_layout(height=80, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                          xaxis={"visible": False}, yaxis={"visible": False},
                          plot_bgcolor="white")
        return fig
    labels = _position_headers(trace)
    titles = [f"{h.name}{'' if h.live else ' (pruned)'}<br><sub>q {h.query} · k {h.key} · "
              f"v {h.value}</sub>" for h in heads]
    n_cols = min(len(heads), HEADS_PER_ROW)
    n_rows = -(-len(heads) // HEADS_PER_ROW)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles,
                        horizontal_spacing=0.35 / n_cols, vertical_spacing=0.5 / n_rows)
    for i, h in enumerate(heads):
        r, c = divmod(i, HEADS_PER_ROW)
        r += 1
        c += 1
        z = [[0.5 if (h.default[q] and cell) else float(cell) for cell in row]
             for q, row in enumerate(h.selected)]
        text = [[f"query {labels[q]} → key {labels[k]}" + (
            " (no match: BOS)" if h.default[q] and h.selected[q][k] else "")
            for k in range(len(labels))] for q in range(len(labels))]
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, zmin=0, zmax=1, showscale=False,
                                 colorscale=[[0, "#f4f6fa"], [0.5, "#f5b971"], [1, "#2d7be5"]],
                                 xgap=1, ygap=1, text=text, name=h.name,
                                 hovertemplate="%{text}<extra>" + h.name + "</extra>"),
                      row=r, col=c)
        fig.update_xaxes(title_text="key", tickangle=-45, row=r, col=c, type="category")
        fig.update_yaxes(autorange="reversed", row=r, col=c, type="category",
                         title_text="query" if c == 1 else None)
    fig.update_annotations(font={"size": 12})
    fig.update_layout(height=height * n_rows + 30, margin={"l": 60, "r": 10, "t": 60, "b": 60},
                      plot_bgcolor="white")
    return fig


def unembedding_table(table: UnembeddingTable) -> Table:
    """Logit rows per (variable, value) with the bias last; cells shaded by value."""
    rows = [[name, value, *[round(x, 3) for x in logits]] for name, value, logits in table.rows]
    rows.append(["bias", "", *[round(x, 3) for x in table.bias]])
    scale = max((abs(x) for r in rows for x in r[2:]), default=1.0) or 1.0
    shade = [[None, None, *[x / scale for x in r[2:]]] for r in rows]
    return Table(columns=["variable", "value", *table.labels], rows=rows,
                 row_class=[""] * len(rows), shade=shade, title="unembedding")


def training_figure(history: dict[str, list[tuple[int, float]]] | None = None, *,
                    height: int = 280, empty: str | None = None) -> go.Figure:
    """Training loss and Gumbel temperature per epoch (traces in :data:`PROGRESS_SERIES` order);
    ``empty`` is shown instead of the axes while there is no point at all."""
    history = history or {}
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, colour, secondary in (("loss", "#1f77b4", False), ("temperature", "#999", True)):
        pts = history.get(name, [])
        fig.add_trace(go.Scatter(x=[s + 1 for s, _ in pts], y=[v for _, v in pts], name=name,
                                 mode="lines", line={"color": colour}), secondary_y=secondary)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="temperature", type="log", secondary_y=True)
    fig.update_layout(height=height, margin={"l": 50, "r": 50, "t": 20, "b": 40},
                      legend={"orientation": "h", "y": 1.1}, plot_bgcolor="white")
    if empty and not any(history.values()):
        empty_state(fig, empty)
    return fig


def rows_to_history(rows) -> dict[str, list[tuple[int, float]]]:
    """Metric rows ``(row_id, step, name, value)`` -> ``{name: [(epoch, value)]}``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for _, step, name, value in rows:
        if name in PROGRESS_SERIES:
            out.setdefault(name, []).append((step, value))
    return out


def progress_label(epoch: int | None, total: int | None, status: str,
                   loss: float | None = None) -> str:
    """``"epoch 12 / 30 (40%) · loss 1.234 · running"``."""
    if epoch is None:
        text = "starting…" if status in ("created", "running") else "no epochs logged"
    elif total:
        text = f"epoch {epoch:,} / {total:,} ({100 * epoch / total:.0f}%)"
    else:
        text = f"epoch {epoch:,}"
    if loss is not None:
        text += f" · loss {loss:.4g}"
    return f"{text} · {status}"


def code_markdown(source: str) -> str:
    """Markdown with one fenced ``python`` block (highlighted by ``dcc.Markdown``)."""
    fence = "````" if "```" in source else "```"
    return f"{fence}python\n{source}{fence}\n"


def code_html(source: str) -> str:
    """Syntax-highlighted HTML of ``source`` (Pygments when installed, else plain)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # highlighting is a nicety; the code itself must show
        return f"<pre>{_html.escape(source)}</pre>"
    return highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))


# -- rendering a Table as HTML (the widget; the page builds Dash components) ----------------
ROW_STYLE = {"new": "background:#fff7e0;font-weight:600", "dead": "color:#9aa0aa",
             "new dead": "background:#fff7e0;color:#9aa0aa", "output": "background:#e6f4ea;"
             "font-weight:600"}


def shade_colour(x: float | None) -> str | None:
    """A diverging background for a value in -1..1 (blue positive, red negative)."""
    if x is None:
        return None
    a = min(1.0, abs(x)) * 0.55
    return f"rgba(45,123,229,{a:.2f})" if x >= 0 else f"rgba(200,55,45,{a:.2f})"


def table_html(table: Table) -> str:
    cell = "border:1px solid #e1e4ea;padding:2px 6px;text-align:center;white-space:nowrap"
    head = "".join(f"<th style='{cell};background:#f0f2f5'>{_html.escape(str(c))}</th>"
                   for c in table.columns)
    body = []
    for r, row in enumerate(table.rows):
        style = ROW_STYLE.get(table.row_class[r] if r < len(table.row_class) else "", "")
        cells = []
        for c, value in enumerate(row):
            colour = shade_colour(table.shade[r][c]) if table.shade else None
            bg = f";background:{colour}" if colour else ""
            cells.append(f"<td style='{cell}{bg}'>{_html.escape(str(value))}</td>")
        body.append(f"<tr style='{style}'>{''.join(cells)}</tr>")
    caption = f"<caption style='text-align:left'>{_html.escape(table.title)}</caption>" \
        if table.title else ""
    return (f"<table style='border-collapse:collapse;font-size:12px'>{caption}<thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")
