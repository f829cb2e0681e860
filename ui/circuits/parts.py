"""Pieces shared by the circuits pages: the search form and its launch, the graph card.

No callbacks live here (they are in the page modules); this module only builds components and
calls the circuits Python API. A launch validates with the search's own rules
(:class:`circuits.prune.PruneConfig`, :func:`circuits.datasets.check_task`), creates the
``circuits`` run, then starts ``workbench circuits discover … --run-id ID`` as a job, so the page
can go to the run at once and a reload re-attaches to it.
"""

from __future__ import annotations

import dash_cytoscape as cyto
from dash import dcc, html

from ui.circuits.figures import circuit_layout, cytoscape_elements, cytoscape_stylesheet
from workbench.errors import UserError
from workbench.store import RunStore

IN_HOUSE_TASKS = ("induction", "modular", "resample")
METHOD_OPTIONS = ("edge-pruning", "eap", "acdc")
ABLATIONS = ("corrupted", "zero", "mean")
OBJECTIVES = ("kl", "logit-diff")


def holds_model(run) -> bool:
    """A run with a model a search can run on: trained, or compiled from a program."""
    from circuits.target import MODEL_KINDS
    return run.kind in MODEL_KINDS and isinstance(run.config, dict) and "model" in run.config


def model_runs(store: RunStore) -> list:
    """Completed runs with a model (what a search can run on)."""
    return [r for r in store.list_runs() if r.status == "completed" and holds_model(r)]


def default_task(run) -> str:
    task = (run.task or "") if run is not None else ""
    if task == "induction":
        return "induction"
    if task.startswith("modular"):
        return "modular"
    return "resample"


def search_form(store: RunStore, model: str | None = None) -> html.Div:
    """The form that launches a search (``model`` preselects a training run)."""
    runs = model_runs(store)
    options = [{"label": f"{r.name or r.id} · {r.task}", "value": r.id} for r in runs]
    chosen = next((r for r in runs if model in (r.id, r.name)), runs[0] if runs else None)

    def field(label, component, key):
        return html.Div([html.Label(label, htmlFor=f"cx-{key}"), component,
                         html.Span(id=f"cx-{key}-err", className="field-error")],
                        className="field")

    return html.Div([
        html.H4("Find a circuit"),
        field("model run", dcc.Dropdown(id="cx-model", options=options, clearable=False,
                                        value=chosen.id if chosen else None,
                                        style={"width": "320px"}), "model"),
        field("task", dcc.Dropdown(id="cx-task", clearable=False,
                                   options=list(IN_HOUSE_TASKS),
                                   value=default_task(chosen), style={"width": "200px"}),
              "task"),
        field("or pair file (.jsonl)", dcc.Input(id="cx-task-file", type="text",
                                                 placeholder="/path/pairs.jsonl"), "task-file"),
        field("method", dcc.Dropdown(id="cx-method", options=list(METHOD_OPTIONS),
                                     value="edge-pruning", clearable=False,
                                     style={"width": "200px"}), "method"),
        field("target sparsity", dcc.Input(id="cx-sparsity", type="text", value="0.9"),
              "sparsity"),
        field("ablation", dcc.Dropdown(id="cx-ablation", options=list(ABLATIONS),
                                       value="corrupted", clearable=False,
                                       style={"width": "200px"}), "ablation"),
        field("objective", dcc.Dropdown(id="cx-objective", options=list(OBJECTIVES),
                                        value="kl", clearable=False,
                                        style={"width": "200px"}), "objective"),
        field("steps", dcc.Input(id="cx-steps", type="text", value="1500"), "steps"),
        field("seed", dcc.Input(id="cx-seed", type="text", value="0"), "seed"),
        html.Button("Launch search", id="cx-launch", className="btn"),
        html.Div(id="cx-form-error", className="form-error"),
        dcc.Location(id="cx-redirect", refresh="callback-nav"),
    ], className="card grow", id="cx-form")


FORM_KEYS = ("model", "task", "method", "sparsity", "ablation", "objective", "steps", "seed")


def validate_search(store: RunStore, values: dict) -> tuple[dict, dict]:
    """(settings, errors by field key) for the form ``values`` (strings from the inputs)."""
    from circuits.datasets import check_task
    from circuits.prune import PruneConfig

    errors: dict[str, str] = {}
    out: dict = {}
    model = values.get("model")
    if not model:
        errors["model"] = "choose a trained model run"
    else:
        try:
            store.get_run(model)
            out["model"] = model
        except UserError as exc:
            errors["model"] = str(exc)
    task = (values.get("task_file") or "").strip() or values.get("task")
    try:
        check_task(task or "")
        out["task"] = task
    except UserError as exc:
        errors["task"] = str(exc)
    for key, typ in (("sparsity", float), ("steps", int), ("seed", int)):
        try:
            out[key] = typ(str(values.get(key, "")).strip())
        except ValueError:
            errors[key] = f"not a{'n integer' if typ is int else ' number'}: " \
                          f"{values.get(key)!r}"
    if "seed" in out and out["seed"] < 0:
        errors["seed"] = f"seed must be >= 0, got {out['seed']}"
    out["method"] = values.get("method") or "edge-pruning"
    if out["method"] not in METHOD_OPTIONS:
        errors["method"] = f"unknown method {out['method']!r}"
    out["ablation"], out["objective"] = values.get("ablation"), values.get("objective")
    if not errors:
        try:  # the search's own rules: sparsity in [0, 1.5], positive steps, known ablation
            PruneConfig(target_sparsity=out["sparsity"], steps=out["steps"], seed=out["seed"],
                        ablation=out["ablation"], objective=out["objective"])
        except UserError as exc:
            msg = str(exc)
            key = ("sparsity" if "sparsity" in msg else "steps" if "steps" in msg
                   else "ablation" if "ablation" in msg else "objective")
            errors[key] = msg
    return out, errors


def launch_search(store: RunStore, settings: dict, env: dict | None = None):
    """Create the ``circuits`` run with its whole search config and start the job that runs it
    from the stored config (``workbench circuits discover --run-id ID``); ``(run, job)``."""
    from circuits.api import DiscoverConfig, prepare_discover
    from workbench.jobs import start_job

    config = DiscoverConfig(model=settings["model"], task=settings["task"],
                            method=settings["method"], target_sparsity=settings["sparsity"],
                            steps=settings["steps"], seed=settings["seed"],
                            ablation=settings["ablation"], objective=settings["objective"])
    run_id = prepare_discover(config, store=store)
    job = start_job(["circuits", "discover", "--run-id", run_id, "--json"], run_id=run_id,
                    store=store, env=env)
    return store.get_run(run_id), job


def graph_component(circuit, element_id: str = "cx-graph", edge_class=None,
                    height: str = "540px"):
    """The dash-cytoscape drawing of ``circuit`` (preset layout, positions from Python)."""
    layout = circuit_layout(circuit, edge_class=edge_class)
    return cyto.Cytoscape(id=element_id, elements=cytoscape_elements(layout),
                          layout={"name": "preset", "fit": True, "padding": 30},
                          stylesheet=cytoscape_stylesheet(), minZoom=0.2, maxZoom=3,
                          userPanningEnabled=True, boxSelectionEnabled=False,
                          style={"width": "100%", "height": height,
                                 "border": "1px solid #eee"}), layout


def legend() -> html.Div:
    from ui.circuits.figures import CHANNEL_COLOURS, KIND_COLOURS
    swatch = lambda c: html.Span(style={"display": "inline-block", "width": "12px",  # noqa
                                        "height": "12px", "background": c,
                                        "margin": "0 4px 0 10px"})
    items = [html.Span([swatch(c), k]) for k, c in KIND_COLOURS.items()]
    items += [html.Span([swatch(c), f"→ {k}"]) for k, c in CHANNEL_COLOURS.items()]
    return html.Div(items, className="muted", style={"fontSize": "12px"})


def edge_list(title: str, edges: list[str], element_id: str) -> html.Div:
    return html.Div([html.B(f"{title} ({len(edges)})"),
                     html.Ul([html.Li(e) for e in edges], id=element_id)
                     if edges else html.Div("none", className="muted", id=element_id)])
