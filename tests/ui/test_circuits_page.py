"""The circuits page in headless Chromium, and the circuit notebook widgets.

One tiny modular-addition model is trained into a store for the module, with an Edge Pruning
circuit (masks stored, so it can be re-extracted) and an EAP circuit on it, and a sweep summary
built from them. Browser tests: the graph renders, the slider changes the edge count, clicking a
node shows its edges and its ablation effect, the sweep curves and the comparison render, and a
search launched from the form is followed live to its graph. Screenshots go to
test-output/screenshots/circuits*.png.
"""

from __future__ import annotations

import re

import pytest

from workbench.store import RunStore
from browser_helpers import wait_until as _wait

JOB_TIMEOUT = 240


@pytest.fixture(scope="module")
def circuit_store(tmp_path_factory):
    import torch

    from circuits.api import discover
    from circuits.sweep import write_summary
    from training.api import train

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("circuits-ui") / "home"
    store = RunStore(home)
    model = train("modular-addition", preset="tiny", store=store, name="tiny-mod").run_id
    ep = discover(model, "modular", target_sparsity=0.6, steps=120, n_examples=64,
                  store=store, name="ep-circuit")
    eap = discover(model, "modular", target_sparsity=0.6, method="eap", n_examples=64,
                   store=store, name="eap-circuit")
    rows = []
    for r in (ep, eap):
        rows.append({"key": r.run_id, "model": model, "task": "modular", "method": r.method,
                     "target_sparsity": 0.6, "seed": 0, **r.to_json()})
    sweep = home / "sweeps" / "demo"
    sweep.mkdir(parents=True)
    write_summary(rows, sweep)
    return {"home": home, "model": model, "ep": ep.run_id, "eap": eap.run_id,
            "sweep": sweep, "total": ep.total_edges}


# -- widgets (no browser) ------------------------------------------------------------------
def test_circuit_widget_graph_and_slider(circuit_store):
    from ui.circuits.widgets import CircuitWidget

    store = RunStore(circuit_store["home"])
    w = CircuitWidget(circuit_store["ep"], store=store)
    assert w.n_edges == store.get_run(circuit_store["ep"]).summary["n_edges"]
    # the figure draws exactly the circuit's edges (one line segment per edge)
    drawn = sum(t.meta["n"] for t in w.figure.data
                if t.meta and t.meta.get("role") == "edges" and t.meta["channel"] != "internal")
    assert drawn == w.n_edges
    node_ids = {i for t in w.figure.data if t.meta and t.meta.get("role") == "nodes"
                for i in t.customdata}
    assert {"tok_embed", "logits", "a0.h0", "m0"} <= node_ids
    w.slider.value = 0.0  # the slider re-extracts from the masks: everything kept
    assert w.n_edges == circuit_store["total"]
    w.set_sparsity(0.9)
    assert w.n_edges <= 0.1 * circuit_store["total"] + 1
    incoming, outgoing = w.node_edges("logits")
    assert incoming == sorted(e for e in w.edges if e.endswith("->logits")) and outgoing == []


def test_circuit_widget_ablation_and_eap_fixed(circuit_store):
    from ui.circuits.widgets import CircuitWidget

    store = RunStore(circuit_store["home"])
    w = CircuitWidget(circuit_store["ep"], store=store)
    w.set_sparsity(0.0)  # the full graph as the circuit: ablating a node changes nothing else
    res = w.ablate("tok_embed", n_examples=32)
    assert res["circuit_kl"] < 1e-4 and res["full_kl"] > 0
    assert res["circuit_ablated_kl"] == pytest.approx(res["full_kl"], rel=1e-4, abs=1e-6)
    eap = CircuitWidget(circuit_store["eap"], store=store)
    assert eap.slider.disabled  # EAP stores no masks: nothing to re-extract


def test_search_and_curves_widgets(circuit_store):
    from ui.circuits.widgets import CurvesWidget, SearchWidget

    store = RunStore(circuit_store["home"])
    s = SearchWidget(circuit_store["ep"], store=store)
    steps, kls = s.series("kl")
    assert len(steps) == 12 and steps[-1] == 120  # logged every 10 of 120 steps
    assert not s.refresh()  # completed: nothing more to poll, nothing appended
    assert len(s.series("kl")[0]) == 12
    c = CurvesWidget(circuit_store["sweep"])
    series = c.series()
    assert len(series) == 2 and any(k.startswith("edge-pruning") for k in series)
    assert len(c.figure.data) == 2


# -- browser -------------------------------------------------------------------------------


CY = ("const el = document.getElementById(arguments[0]);"
      "const box = el && (el._cyreg ? el : el.querySelector('div'));"
      "const cy = box && box._cyreg && box._cyreg.cy;")


def _cy_counts(dash_duo, element="cx-graph"):
    return dash_duo.driver.execute_script(
        CY + "return cy ? [cy.nodes().length, cy.edges('.circuit').length] : null;", element)


def _click_node(dash_duo, node, element="cx-graph"):
    """A real mouse click at the node's rendered position on the canvas."""
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = dash_duo.driver.execute_script(
        CY + "const r = box.getBoundingClientRect(); const p = cy.getElementById(arguments[1])"
        ".renderedPosition(); return [r.left + p.x, r.top + p.y];", element, node)
    actions = ActionChains(dash_duo.driver)
    actions.w3c_actions.pointer_action.move_to_location(int(x), int(y))
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def _edge_count(dash_duo):
    m = re.match(r"(\d+) edges", dash_duo.find_element("#cx-edge-count").text)
    return int(m.group(1)) if m else None


@pytest.mark.browser
def test_circuit_page_graph_slider_and_node(dash_duo, circuit_store, screenshot):
    from selenium.webdriver.common.keys import Keys

    from ui.app import create_app

    dash_duo.start_server(create_app(circuit_store["home"], poll_ms=500))
    # the Run page of the model links here
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{circuit_store['model']}")
    link = dash_duo.wait_for_element(f"a[href='/runs/{circuit_store['model']}/circuits']",
                                     timeout=20)
    link.click()
    dash_duo.wait_for_contains_text("#cx-found", "ep-circuit", timeout=20)
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{circuit_store['ep']}/circuits")
    counts = _wait(lambda: _cy_counts(dash_duo), 30, "the cytoscape graph")
    start = _edge_count(dash_duo)
    assert counts[1] == start > 0
    screenshot(dash_duo, "circuits-graph")
    handle = dash_duo.find_element("#cx-slider [role='slider']")
    handle.click()
    handle.send_keys(Keys.HOME)  # sparsity 0: every edge
    _wait(lambda: _edge_count(dash_duo) == circuit_store["total"], 20, "all edges")
    _wait(lambda: _cy_counts(dash_duo)[1] == circuit_store["total"], 10, "all edges drawn")
    handle.send_keys(Keys.END)  # sparsity 1: nothing left
    _wait(lambda: _edge_count(dash_duo) == 0, 20, "no edges")
    handle.send_keys(Keys.HOME)
    _wait(lambda: _edge_count(dash_duo) == circuit_store["total"], 20, "all edges again")
    _click_node(dash_duo, "m0")
    dash_duo.wait_for_text_to_equal("#cx-node-name", "m0", timeout=20)
    out_edges = dash_duo.find_element("#cx-out-edges").text.splitlines()
    assert out_edges == ["m0->logits"]
    incoming = dash_duo.find_element("#cx-in-edges").text.splitlines()
    assert incoming and all(e.endswith("->m0.in") for e in incoming)
    table = _wait(lambda: dash_duo.find_element("#cx-ablation-table").text, 90,
                  "the ablation effect")
    assert "circuit − node" in table
    screenshot(dash_duo, "circuits-node")


@pytest.mark.browser
def test_circuits_sweep_and_compare_views(dash_duo, circuit_store, screenshot):
    from ui.app import create_app

    dash_duo.start_server(create_app(circuit_store["home"]))
    ep, eap = circuit_store["ep"], circuit_store["eap"]
    dash_duo.driver.get(f"{dash_duo.server_url}/circuits?a={ep}&b={eap}")
    stats = _wait(lambda: dash_duo.find_element("#cx-cmp-stats").text, 30, "the comparison")
    assert "Jaccard" in stats
    _wait(lambda: _cy_counts(dash_duo, "cx-cmp-graph"), 20, "the union graph")
    path = dash_duo.find_element("#cx-sweep-path")
    path.send_keys(str(circuit_store["sweep"]) + "\n")
    _wait(lambda: len(dash_duo.find_elements("#cx-sweep-rows tr")) == 3, 20, "the sweep table")
    n_traces = dash_duo.driver.execute_script(
        "const g = document.querySelector('#cx-sweep-curves .js-plotly-plot');"
        "return g && g.data ? g.data.length : -1;")
    assert n_traces == 2
    screenshot(dash_duo, "circuits-overview")


@pytest.mark.browser
@pytest.mark.integration
def test_launch_search_from_form_and_follow_it(dash_duo, circuit_store, screenshot,
                                               monkeypatch):
    from ui.app import create_app
    from workbench import jobs

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(circuit_store["home"])
    dash_duo.start_server(create_app(circuit_store["home"], poll_ms=500))
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{circuit_store['model']}/circuits")
    steps = dash_duo.wait_for_element("#cx-steps", timeout=20)
    sparsity = dash_duo.find_element("#cx-sparsity")
    dash_duo.clear_input(sparsity)
    sparsity.send_keys("2")
    dash_duo.find_element("#cx-launch").click()  # invalid: nothing starts
    dash_duo.wait_for_contains_text("#cx-sparsity-err", "[0, 1.5]", timeout=10)
    n_runs = len(store.list_runs())
    dash_duo.clear_input(sparsity)
    sparsity.send_keys("0.7")
    dash_duo.clear_input(steps)
    steps.send_keys("200")
    dash_duo.find_element("#cx-launch").click()
    def new_run_page():
        m = re.search(r"/runs/(r-[0-9a-f]{12})/circuits$", dash_duo.driver.current_url)
        return m.group(1) if m and m.group(1) != circuit_store["model"] else None

    run_id = _wait(new_run_page, 20, "the new circuit run's page")
    assert len(store.list_runs()) == n_runs + 1
    job = jobs.job_for_run(run_id, store=store)
    assert job is not None and "--run-id" in job.argv and run_id in job.argv
    dash_duo.wait_for_text_to_equal("#cx-status", "completed", timeout=JOB_TIMEOUT)
    # the live curve shows every logged step once (rows polled incrementally)
    n_points = _wait(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#cx-progress .js-plotly-plot');"
        "return g && g.data ? g.data[0].x.length : 0;"), 20, "the KL curve")
    assert n_points == 20
    _wait(lambda: _cy_counts(dash_duo), 30, "the graph of the finished search")
    screenshot(dash_duo, "circuits-launched")
