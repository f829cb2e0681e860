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
