"""Small reusable pieces of page layout (no callbacks here)."""

from __future__ import annotations

from dash import html


def status_badge(status: str, id=None) -> html.Span:
    kwargs = {"id": id} if id is not None else {}
    return html.Span(status, className=f"status status-{status}", **kwargs)


def progress_bar(fraction: float, done: bool = False, id_prefix: str = "progress") -> html.Div:
    pct = max(0.0, min(1.0, fraction)) * 100
    return html.Div(
        html.Div(id=f"{id_prefix}-inner", className="progress-inner" + (" done" if done else ""),
                 style={"width": f"{pct:.1f}%"}),
        className="progress-outer", id=f"{id_prefix}-outer")


def run_or_not_found(store, run_id: str | None, back: tuple[str, str] = ("all runs", "/")):
    """``(run, None)`` for an existing run, else ``(None, a "Run not found" page body)``."""
    from dash import dcc

    from workbench.errors import UserError

    try:
        return store.get_run(run_id or ""), None
    except UserError as exc:
        return None, html.Div([html.H2("Run not found"), html.P(str(exc)),
                               dcc.Link(back[0], href=back[1])])
