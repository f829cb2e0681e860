"""Circuits overview (``/circuits``): launch a search, the circuit runs, a sweep's
faithfulness-vs-edges curves, and the comparison of two circuits.

- Launch: the form of :func:`ui.circuits.parts.search_form`; the callback here serves it on
  every page that shows it (also ``/runs/<id>/circuits`` of a trained model). Invalid values are
  shown next to their field and nothing is started.
- Sweep view: a sweep directory or its ``summary.json`` (the sweeps under
  ``$WORKBENCH_HOME/sweeps`` are listed); curves from :func:`ui.circuits.figures.
  faithfulness_curves`, the table below.
- Compare: two circuit runs → shared edges, Jaccard and the chance overlap
  (:func:`circuits.compare.compare`), and the union drawn with edges coloured shared / only A /
  only B.
"""

from __future__ import annotations

import json
from pathlib import Path

import dash
from dash import Input, Output, State, callback, dcc, html

from circuits.compare import compare
from circuits.explore import circuit_runs, load_stored
from circuits.io import Circuit
from ui.circuits.figures import COMPARE_COLOURS, faithfulness_curves
from ui.circuits.parts import (FORM_KEYS, graph_component, launch_search, search_form,
                                     validate_search)
from ui.state import get_store, job_env
from workbench.errors import UserError

dash.register_page(__name__, path="/circuits", name="Circuits", title="Circuits · workbench")

NO_SWEEP = "no sweep chosen: pick one above, or make one with  workbench circuits sweep SPEC.yaml"


def _sweep_options(store) -> list[str]:
    root = store.home / "sweeps"
    return sorted(str(p) for p in root.glob("*/summary.json")) if root.is_dir() else []


def _run_options(store) -> list[dict]:
    return [{"label": f"{r.name or r.id} · {(r.config or {}).get('method')} · {r.task} · "
                      f"{(r.summary or {}).get('n_edges')} edges", "value": r.id}
            for r in circuit_runs(store)]


def layout(a: str | None = None, b: str | None = None, sweep: str | None = None, **query):
    store = get_store()
    runs = _run_options(store)
    listing = [html.Li([dcc.Link(o["label"], href=f"/runs/{o['value']}/circuits")])
               for o in runs]
    return html.Div([
        html.H2("Circuits"),
        html.Div([
            search_form(store),
            html.Div([html.H4("Circuit runs"),
                      html.Ul(listing, id="cx-runs") if listing else
                      html.Div("none yet", className="muted", id="cx-runs")],
                     className="card", style={"flex": "0 1 460px"}),
        ], className="row"),
        html.Div([
            html.H4("Sweep: faithfulness vs edges"),
            html.Div([
                dcc.Dropdown(id="cx-sweep-pick", options=_sweep_options(store),
                             placeholder="a sweep under the store", style={"width": "420px"}),
                dcc.Input(id="cx-sweep-path", type="text", value=sweep or "",
                          placeholder="or a sweep directory / summary.json",
                          style={"width": "420px"}, debounce=True),
            ], className="controls"),
            html.Div(id="cx-sweep-error", className="form-error"),
            dcc.Graph(id="cx-sweep-curves", figure=faithfulness_curves([], empty=NO_SWEEP),
                      config={"displaylogo": False}),
            html.Div(id="cx-sweep-table"),
        ], className="card"),
        html.Div([
            html.H4("Compare two circuits"),
            html.Div([
                dcc.Dropdown(id="cx-cmp-a", options=runs, value=a, placeholder="circuit A",
                             style={"width": "420px"}),
                dcc.Dropdown(id="cx-cmp-b", options=runs, value=b, placeholder="circuit B",
                             style={"width": "420px"}),
            ], className="controls"),
            html.Div(id="cx-cmp-result"),
        ], className="card"),
    ])


@callback(
    *[Output(f"cx-{k}-err", "children") for k in FORM_KEYS],
    Output("cx-form-error", "children"), Output("cx-redirect", "href"),
    Input("cx-launch", "n_clicks"),
    State("cx-model", "value"), State("cx-task", "value"), State("cx-task-file", "value"),
    State("cx-method", "value"), State("cx-sparsity", "value"), State("cx-ablation", "value"),
    State("cx-objective", "value"), State("cx-steps", "value"), State("cx-seed", "value"),
    prevent_initial_call=True)
def launch(_clicks, model, task, task_file, method, sparsity, ablation, objective, steps,
           seed):
    store = get_store()
    values = dict(model=model, task=task, task_file=task_file, method=method,
                  sparsity=sparsity, ablation=ablation, objective=objective, steps=steps,
                  seed=seed)
    settings, errors = validate_search(store, values)
    field_errors = [errors.get(k, "") for k in FORM_KEYS]
    if errors:
        return (*field_errors, "fix the highlighted values; nothing was started",
                dash.no_update)
    try:
        run, _job = launch_search(store, settings, env=job_env())
    except UserError as exc:
        return (*field_errors, str(exc), dash.no_update)
    return (*field_errors, "", f"/runs/{run.id}/circuits")


def load_sweep_rows(path: str) -> list[dict]:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "summary.json"
    if p.name != "summary.json" or not p.is_file():
        raise UserError(f"{path!r} is not a sweep directory or its summary.json")
    try:
        rows = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{p} is not valid JSON ({exc.msg})") from None
    if not isinstance(rows, list):
        raise UserError(f"{p} is not a sweep summary")
    return rows


@callback(Output("cx-sweep-curves", "figure"), Output("cx-sweep-table", "children"),
          Output("cx-sweep-error", "children"),
          Input("cx-sweep-pick", "value"), Input("cx-sweep-path", "value"))
def show_sweep(picked, typed):
    path = (typed or "").strip() or picked
    if not path:
        return faithfulness_curves([], empty=NO_SWEEP), "", ""
    try:
        rows = load_sweep_rows(path)
    except UserError as exc:
        return faithfulness_curves([], empty=NO_SWEEP), "", str(exc)
    cols = ("method", "model", "task", "target_sparsity", "n_edges", "kl", "accuracy")
    body = [html.Tr([html.Th(c) for c in cols])]
    for r in sorted(rows, key=lambda r: (str(r.get("model")), str(r.get("method")),
                                         r.get("n_edges") or 0)):
        body.append(html.Tr([html.Td(Path(str(r.get(c))).name if c == "model" else
                                     (f"{r.get(c):.4g}" if isinstance(r.get(c), float)
                                      else str(r.get(c)))) for c in cols]))
    return faithfulness_curves(rows), html.Table(html.Tbody(body), className="table",
                                                 id="cx-sweep-rows"), ""


@callback(Output("cx-cmp-result", "children"), Input("cx-cmp-a", "value"),
          Input("cx-cmp-b", "value"))
def show_comparison(a, b):
    if not a or not b:
        return html.Div("choose two circuits", className="muted")
    store = get_store()
    try:
        ca, cb = load_stored(a, store).circuit, load_stored(b, store).circuit
        res = compare(ca, cb)
    except UserError as exc:
        return html.Div(str(exc), className="form-error", id="cx-cmp-error")
    sa, sb = set(ca.edges), set(cb.edges)
    classes = {e: "shared" if e in sa and e in sb else "only-a" if e in sa else "only-b"
               for e in sa | sb}
    union = Circuit(ca.spec, sorted(sa | sb), {**cb.scores, **ca.scores}, {}, {})
    graph, _ = graph_component(union, element_id="cx-cmp-graph", edge_class=classes,
                               height="520px")
    swatches = [html.Span([html.Span(style={"display": "inline-block", "width": "12px",
                                            "height": "12px", "background": c,
                                            "margin": "0 4px 0 10px"}), k])
                for k, c in COMPARE_COLOURS.items()]
    return html.Div([
        html.Div(f"A {res.n_a} edges · B {res.n_b} edges · shared {res.shared} · only A "
                 f"{res.only_a} · only B {res.only_b} · Jaccard {res.jaccard:.3f} (chance "
                 f"{res.chance_jaccard:.3f}, {res.chance_shared:.1f} shared by chance)",
                 id="cx-cmp-stats"),
        html.Div(swatches, className="muted"),
        graph,
    ])
