"""The Fourier page (``/runs/<run_id>/fourier``), its figure factories and the notebook widget.

One tiny modular-addition run (checkpoints every 25 steps) is trained into a store for the
module. Without a browser: the run page links to the Fourier page for modular runs only, the
layout offers "Compute" until the series is cached, the factories and the widget draw every
figure and scrub through checkpoints. In headless Chromium: Compute starts the real
``workbench fourier RUN --checkpoint all --json`` job, a reload re-attaches, the figures render
and the checkpoint slider moves them. Screenshots: test-output/screenshots/fourier*.png.
"""

from __future__ import annotations


import dash
import plotly.graph_objects as go
import pytest

from workbench.store import RunStore
from browser_helpers import fourier_plot_count as _plots
from browser_helpers import plot_title as _title
from browser_helpers import wait_until as _wait

JOB_TIMEOUT = 240


@pytest.fixture(scope="module")
def fourier_store(tmp_path_factory):
    import torch

    from training.api import train

    torch.set_num_threads(1)
    store = RunStore(tmp_path_factory.mktemp("fourier-ui") / "home")
    train("modular-addition", preset="tiny", store=store, name="tiny-add",
          overrides={"checkpoint_every": 25})
    train("sparse-parity", preset="tiny", store=store, name="tiny-parity",
          overrides={"steps": 20, "checkpoint_every": 20})
    return store


def _analyse(store, ref="tiny-add") -> dict:
    from workbench.fourier.cli import analyze_run, load_fourier_run
    from workbench.runs import load_run

    return analyze_run(load_fourier_run(ref, load_run(ref, store)), "all")


def _page_layout(app):
    page = next(p for p in dash.page_registry.values()
                if p.get("path_template") == "/runs/<run_id>/fourier")
    return page["layout"]


def test_run_page_links_to_fourier_for_the_tasks_it_covers(fourier_store, seed):
    from ui.app import create_app

    create_app(fourier_store.home)
    from ui.runs.run_page import analyses_for

    add, parity = fourier_store.get_run("tiny-add"), fourier_store.get_run("tiny-parity")
    other = seed(fourier_store, task="induction-heads", name="not-fourier")
    assert ("Fourier features", f"/runs/{add.id}/fourier") in analyses_for(add)
    assert ("Fourier features", f"/runs/{parity.id}/fourier") in analyses_for(parity)
    assert all(name != "Fourier features" for name, _ in analyses_for(other))


def test_layout_offers_compute_then_shows_results(tmp_path):
    from training.api import train
    from ui.app import create_app

    store = RunStore(tmp_path / "home")
    run_id = train("modular-addition", preset="tiny", store=store,
                   overrides={"steps": 50, "checkpoint_every": 25}).run_id
    app = create_app(store.home)
    layout = _page_layout(app)
    with app.server.test_request_context():
        before = str(layout(run_id=run_id))
        assert "Compute" in before and "not computed yet" in before and "fx-summary" not in before
        _analyse(store, run_id)
        after = str(layout(run_id=run_id))
        assert "fx-summary" in after and "computed over 2 checkpoints" in after
        assert "Run not found" in str(layout(run_id="nope"))


def test_figure_factories_on_a_real_series(fourier_store):
    from ui.fourier.figures import (MEASURES, basis_labels, explained_histogram, logit_map,
                                    neuron_heatmap, norm_bars, phase_curves, progress_measures)
    from workbench.fourier.views import checkpoint_report, checkpoint_views

    series = _analyse(fourier_store)
    run_id = fourier_store.get_run("tiny-add").id
    final = checkpoint_report(series)
    p = series["p"]
    fig = norm_bars(final)
    assert len(fig.data) == 2 and len(fig.data[0].y) == p // 2 + 1
    history = fourier_store.metric_history(run_id)
    curves = phase_curves(history, {"memorisation_end": 50, "circuit_formation_end": None})
    assert curves.layout.xaxis.type == "log" and curves.layout.yaxis.type == "log"
    assert len(curves.layout.shapes) == 2  # one phase line on each row
    views = checkpoint_views(fourier_store, run_id, final["step"])
    heat = neuron_heatmap(views.neuron(0), 0)
    assert len(heat.data[0].z) == p and len(heat.data[0].z[0]) == p
    lmap = logit_map(views.logit_map)
    assert list(lmap.data[0].x) == basis_labels(p) and basis_labels(4) == [
        "const", "cos 1", "sin 1", "cos 2"]
    fractions = [n["explained_fraction"] for n in final["neuron_frequencies"]]
    assert len(explained_histogram(fractions).data[0].x) == len(fractions)
    measures = progress_measures(series, step=series["checkpoints"][1]["step"])
    assert [t.name for t in measures.data] == [m[1] for m in MEASURES]
    assert len(measures.data[0].x) == len(series["checkpoints"])


def test_widget_scrubs_checkpoints_and_neurons(fourier_store):
    from ui.fourier.widgets import FIGURES, FourierWidget

    series = _analyse(fourier_store)
    w = FourierWidget("tiny-add", store=fourier_store)
    assert not w.live and w.steps == [c["step"] for c in series["checkpoints"]]
    assert all(isinstance(w.figures[name], go.FigureWidget) and w.figures[name].data
               for name in FIGURES)
    assert w.step == w.steps[-1] and str(w.steps[-1]) in w.figures["norms"].layout.title.text
    w.set_step(0)
    assert w.step == w.steps[0] and w.slider.value == 0
    assert w.figures["norms"].layout.title.text.startswith(f"step {w.steps[0]} ")
    assert w.figures["measures"].layout.shapes[-1].x0 == w.steps[0]
    w.slider.value = 2  # the slider drives the same path
    assert w.step == w.steps[2]
    w.set_neuron(5)
    assert w.figures["neuron"].layout.title.text.startswith("neuron 5 ")
    assert w.neuron_picker.value == 5
    assert any("widget" in k for k in w._repr_mimebundle_())


def test_widget_without_analysis_says_so(fourier_store):
    from ui.fourier.widgets import FourierWidget
    from workbench.errors import UserError
    from workbench.fourier.views import start_analysis

    w = FourierWidget("tiny-parity", store=fourier_store)
    assert "not computed yet" in w.status.value and w.series is None
    other = fourier_store.create_run(kind="train", task="induction-heads",
                                     config={"task": "induction-heads"})
    with pytest.raises(UserError):  # only the tasks `workbench fourier` covers
        start_analysis(fourier_store, other.id)


def test_widget_compute_runs_the_job_and_follows_it_to_the_figures(fourier_store):
    import time

    from ui.fourier.widgets import FourierWidget
    from workbench.jobs import job_status

    w = FourierWidget("tiny-parity", store=fourier_store)
    assert w.series is None
    job = w.compute()  # a CLI subprocess; the widget polls the store until its series is in
    deadline = time.monotonic() + 240
    while w.polling and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not w.polling and w.series is not None, w.status.value
    assert job_status(job.id, store=fourier_store).status == "completed"
    assert "parity set" in w.status.value and w.figures["curves"].data


@pytest.mark.browser
def test_fourier_page_compute_reload_and_scrub(dash_duo, store, screenshot):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from training.api import train
    from ui.app import create_app
    from workbench import jobs

    run_id = train("modular-addition", preset="tiny", store=store, name="grok-tiny",
                   overrides={"checkpoint_every": 25}).run_id
    dash_duo.start_server(create_app(store.home, poll_ms=500))
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{run_id}")
    dash_duo.wait_for_element(f"a[href='/runs/{run_id}/fourier']", timeout=20).click()
    dash_duo.wait_for_contains_text("#fx-status", "not computed yet", timeout=20)
    screenshot(dash_duo, "fourier-empty")
    dash_duo.find_element("#fx-compute").click()
    dash_duo.wait_for_contains_text("#fx-status", "computing", timeout=20)
    job_id = store.get_result(run_id, "fourier", "job")["job_id"]
    assert jobs.job_status(job_id, store=store).argv == ["fourier", run_id, "--checkpoint",
                                                         "all", "--json"]
    dash_duo.driver.refresh()  # re-attach: the page is rebuilt from the store
    dash_duo.wait_for_element("#fx-status", timeout=20)
    _wait(lambda: "fx-summary" in dash_duo.driver.page_source, JOB_TIMEOUT, "the results")
    assert jobs.job_status(job_id, store=store).status == "completed"
    assert "computed over 6 checkpoints" in dash_duo.find_element("#fx-status").text
    _wait(lambda: _plots(dash_duo) == 6, 30, "six figures")
    _wait(lambda: _title(dash_duo, "fx-neuron-map").startswith("neuron "), 30, "neuron map")
    assert _title(dash_duo, "fx-norms").startswith("step 150 ")
    screenshot(dash_duo, "fourier")
    handle = dash_duo.driver.find_element(By.CSS_SELECTOR, "#fx-step [role='slider']")
    handle.click()
    handle.send_keys(Keys.HOME)  # scrub to the first checkpoint
    _wait(lambda: _title(dash_duo, "fx-norms").startswith("step 25 "), 30, "the first step")
    dash_duo.wait_for_contains_text("#fx-step-label", "step 25", timeout=10)
    screenshot(dash_duo, "fourier-step25")


@pytest.mark.browser
def test_fourier_page_with_cached_analysis(dash_duo, fourier_store, screenshot):
    from ui.app import create_app

    _analyse(fourier_store)
    run_id = fourier_store.get_run("tiny-add").id
    dash_duo.start_server(create_app(fourier_store.home, poll_ms=500))
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{run_id}/fourier")
    dash_duo.wait_for_contains_text("#fx-status", "computed over 6 checkpoints", timeout=20)
    _wait(lambda: _plots(dash_duo) == 6, 30, "six figures")
    _wait(lambda: _title(dash_duo, "fx-logit-map").startswith("logits"), 30, "the logit map")
    assert dash_duo.find_element("#fx-compute").text == "Recompute"
    assert not dash_duo.find_element("#fx-log").is_displayed()  # no failure to show
    # the log step axis keeps the data's range (phase lines are placed in log10 units)
    x_range = dash_duo.driver.execute_script(
        "return document.querySelector('#fx-curves .js-plotly-plot').layout.xaxis.range;")
    assert x_range[1] < 3.5, x_range
    screenshot(dash_duo, "fourier-cached")
