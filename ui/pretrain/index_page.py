"""``/pretrain``: launch a pretraining job (data directory, preset, ``key=value`` overrides,
name), checked like ``workbench pretrain``; the error names the bad value and nothing starts.
A valid form creates the run and its job and goes to the run's pretraining page. Below: the
pretraining runs in the store."""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from ui.components import status_badge
from ui.pretrain.launch import check_form, launch_pretrain, preset_options
from ui.state import get_store, job_env
from workbench.errors import UserError

dash.register_page(__name__, path="/pretrain", name="Pretrain", title="Pretrain · workbench")


def _runs():
    runs = get_store().list_runs(kind="pretrain", limit=50)
    if not runs:
        return html.Div("no pretraining runs yet", className="muted")
    return html.Ul([html.Li([dcc.Link(r.name or r.id, href=f"/runs/{r.id}/pretrain"), " ",
                             status_badge(r.status)]) for r in runs], id="pt-runs-list")


def layout(**query):
    return html.Div([
        html.H2("Pretrain a language model"),
        html.Div([
            html.Div([
                html.Label("data directory (from `workbench data prepare`)"),
                dcc.Input(id="pt-data", type="text", value=query.get("data", ""),
                          style={"width": "420px"}),
                html.Span(id="pt-data-err", className="field-error"),
                html.Label("preset"),
                dcc.Dropdown(id="pt-preset", options=preset_options(), value="tiny",
                             clearable=False, style={"width": "200px"}),
                html.Label("overrides (key=value per line, e.g. steps=100)"),
                dcc.Textarea(id="pt-extra", style={"width": "420px", "height": "80px"}),
                html.Span(id="pt-extra-err", className="field-error"),
                html.Label("run name (optional)"),
                dcc.Input(id="pt-name", type="text", placeholder="my-lm"),
                html.Span(id="pt-name-err", className="field-error"),
                html.Div(html.Button("Launch pretraining job", id="pt-launch", className="btn"),
                         style={"marginTop": "10px"}),
                html.Div(id="pt-error", className="form-error"),
                dcc.Location(id="pt-redirect", refresh="callback-nav"),
            ], className="card grow"),
            html.Div([html.H4("Pretraining runs"), html.Div(_runs(), id="pt-runs")],
                     className="card", style={"flex": "0 1 360px"}),
        ], className="row"),
    ])


@callback(Output("pt-data-err", "children"), Output("pt-extra-err", "children"),
          Output("pt-name-err", "children"), Output("pt-error", "children"),
          Output("pt-redirect", "href"),
          Input("pt-launch", "n_clicks"), State("pt-data", "value"),
          State("pt-preset", "value"), State("pt-extra", "value"), State("pt-name", "value"),
          prevent_initial_call=True)
def launch(_clicks, data, preset, extra, name):
    store = get_store()
    name = (name or "").strip() or None
    check = check_form(data, preset, extra, name, store)
    if not check.ok:
        e = check.errors
        return (e.get("data", ""), e.get("extra", ""), e.get("name", ""),
                e.get("form", "fix the highlighted values; nothing was started"),
                dash.no_update)
    try:
        run, _job = launch_pretrain(store, data.strip(), preset, check.overrides, name=name,
                                    env=job_env())
    except UserError as exc:
        return "", "", "", str(exc), dash.no_update
    return "", "", "", "", f"/runs/{run.id}/pretrain"
