"""Runs page: every run in the store with task, status, key metrics and created time; filter,
sort and page through them server-side, click through to a run."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, ctx, dcc, html

from ui.components import status_badge
from ui.runs.data import filter_sort, runs_overview
from ui.state import get_store

dash.register_page(__name__, path="/", name="Runs", title="Runs · workbench")

PAGE_SIZE = 50
SORTS = [("created", "created"), ("test_acc", "test acc"), ("train_acc", "train acc"),
         ("test_loss", "test loss"), ("train_loss", "train loss"), ("task", "task"),
         ("status", "status")]
STATUSES = ["created", "running", "interrupted", "completed", "failed", "cancelled"]
COLUMNS = [("run", None), ("task", None), ("kind", None), ("status", None),
           ("steps", "num"), ("train loss", "num"), ("test loss", "num"), ("train acc", "num"),
           ("test acc", "num"), ("created", None)]


def _num(value, pct=False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if pct else f"{value:.4g}"


def _row(r: dict) -> html.Tr:
    return html.Tr([
        html.Td(dcc.Link(r["name"] or r["id"], href=f"/runs/{r['id']}", title=r["id"])),
        html.Td(r["task"]), html.Td(r["kind"]), html.Td(status_badge(r["status"])),
        html.Td("–" if r["steps"] is None else f"{r['steps']:,}", className="num"),
        html.Td(_num(r["train_loss"]), className="num"),
        html.Td(_num(r["test_loss"]), className="num"),
        html.Td(_num(r["train_acc"], True), className="num"),
        html.Td(_num(r["test_acc"], True), className="num"),
        html.Td(r["created"]),
    ])


def render_table(rows: list[dict], page: int = 0,
                 filtered: bool = False) -> tuple[html.Table, str, int]:
    """The table for one page of ``rows``, the "showing …" text and the clamped page.

    Filtering, sorting and paging happen server-side, so the browser only ever renders one
    page of rows however many runs the store holds (see benchmarks/ui_runs_page.py).
    """
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    chunk = rows[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    head = html.Thead(html.Tr([html.Th(c, className=kind or "") for c, kind in COLUMNS]))
    table = html.Table([head, html.Tbody([_row(r) for r in chunk])], className="runs",
                       id="runs-table")
    if rows:
        info = (f"showing {page * PAGE_SIZE + 1:,}–{page * PAGE_SIZE + len(chunk):,} of "
                f"{len(rows):,} runs")
    else:
        info = "no runs match" if filtered else "no runs yet: start one from New run"
    return table, info, page


def layout(**query):
    rows = runs_overview(get_store())
    table, info, _ = render_table(rows)
    return html.Div([
        html.H2("Runs"),
        html.Div([
            dcc.Input(id="runs-filter", type="text", placeholder="filter: id, name, task, kind",
                      debounce=True),
            dcc.Dropdown(id="runs-status", options=STATUSES, placeholder="any status",
                         clearable=True, style={"width": "170px"}),
            html.Span("sort"),
            dcc.Dropdown(id="runs-sort", options=[{"label": lab, "value": v} for v, lab in SORTS],
                         value="created", clearable=False, style={"width": "150px"}),
            dcc.RadioItems(id="runs-order", options=[{"label": " desc", "value": "desc"},
                                                    {"label": " asc", "value": "asc"}],
                           value="desc", inline=True),
            html.Button("‹ prev", id="runs-prev", className="btn"),
            html.Button("next ›", id="runs-next", className="btn"),
            html.Span(info, id="runs-info", className="muted"),
            dcc.Link("+ new run", href="/new", style={"marginLeft": "auto"}),
        ], className="controls"),
        html.Div(table, id="runs-table-wrap"),
        dcc.Store(id="runs-page", data=0),
        dcc.Interval(id="runs-refresh", interval=5000),
    ])


@callback(
    Output("runs-table-wrap", "children"), Output("runs-info", "children"),
    Output("runs-page", "data"),
    Input("runs-filter", "value"), Input("runs-status", "value"), Input("runs-sort", "value"),
    Input("runs-order", "value"), Input("runs-prev", "n_clicks"),
    Input("runs-next", "n_clicks"), Input("runs-refresh", "n_intervals"),
    State("runs-page", "data"), prevent_initial_call=True)
def update_table(text, status, sort, order, _prev, _next, _tick, page):
    rows = filter_sort(runs_overview(get_store()), text=text or "", status=status,
                       sort=sort or "created", descending=order != "asc")
    trigger = ctx.triggered_id
    if trigger == "runs-prev":
        page = (page or 0) - 1
    elif trigger == "runs-next":
        page = (page or 0) + 1
    elif trigger != "runs-refresh":
        page = 0
    table, info, page = render_table(rows, page or 0, filtered=bool(text or status))
    return table, info, page
