"""The Fourier page, figures and widget for sparse-parity and group-composition runs.

One tiny parity run and one tiny group run (three checkpoints each) are trained into a store for
the module and analysed with the real ``workbench fourier RUN --checkpoint all`` code path. The
figure factories are checked against the payload they are drawn from; the page layout offers
Compute and then the task's results; the widget draws the same figures. In headless Chromium the
page computes the parity analysis as a job and shows the cached group analysis.
Screenshots: test-output/screenshots/fourier-parity.png, fourier-group.png.
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
import pytest

from browser_helpers import fourier_plot_count as _plots
from browser_helpers import plot_title as _title
from browser_helpers import wait_until as _wait
from workbench.store import RunStore

JOB_TIMEOUT = 240


def _train(store: RunStore) -> None:
    import torch

    from training.api import train

    torch.set_num_threads(1)
    train("sparse-parity", preset="tiny", store=store, name="tiny-parity",
          overrides={"steps": 120, "checkpoint_every": 40})
    train("group-composition", preset="tiny", store=store, name="tiny-group",
          overrides={"steps": 90, "checkpoint_every": 30})


@pytest.fixture(scope="module")
def task_store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("fourier-tasks") / "home")
    _train(store)
    return store


def _analyse(store, ref) -> dict:
    from workbench.fourier.task_runs import analyze_task_run
    from workbench.runs import load_run

    return analyze_task_run(load_run(ref, store), "all")


@pytest.fixture(scope="module")
def parity_series(task_store):
    return _analyse(task_store, "tiny-parity")


@pytest.fixture(scope="module")
def group_series(task_store):
    return _analyse(task_store, "tiny-group")


def test_walsh_and_parity_set_figures(parity_series):
    from ui.fourier.figures import KEY_COLOUR
    from ui.fourier.task_figures import (DETECTED_COLOUR, neuron_shares, parity_set_bars,
                                         subset_label, walsh_bars)

    final = parity_series["checkpoints"][-1]
    truth = final["true_support"]
    fig = walsh_bars(final)
    top = final["output_spectrum"]["top"]
    bars = fig.data[0]
    assert list(bars.x) == [subset_label(t["set"]) for t in top]
    assert list(bars.y) == [t["coefficient"] for t in top]
    assert [c == KEY_COLOUR for c in bars.marker.color] == [sorted(t["set"]) == truth
                                                            for t in top]
    assert list(fig.data[1].y) == final["output_spectrum"]["power_by_degree"]
    assert subset_label([]) == "∅" and subset_label([3, 5]) == "{3, 5}"

    bars = parity_set_bars(final).data[0]
    assert list(bars.y) == final["coordinate_scores"] and len(bars.x) == final["n"]
    assert [i for i, c in enumerate(bars.marker.color) if c == KEY_COLOUR] == truth
    assert [i for i, c in enumerate(bars.marker.line.color) if c == DETECTED_COLOUR] == \
        final["detected_support"]

    shares = neuron_shares(final)
    weights = list(shares.data[0].y)
    assert weights == sorted(final["weight_parity_share"], reverse=True)
    assert len(shares.data[1].y) == len(final["neuron_parity_share"])


def test_hidden_progress_over_checkpoints(parity_series):
    from ui.fourier.task_figures import hidden_progress_curve

    steps = [r["step"] for r in parity_series["checkpoints"]]
    fig = hidden_progress_curve(parity_series, steps[1])
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["hidden progress"].x) == steps
    assert list(by_name["hidden progress"].y) == [h for _, h in parity_series["hidden_progress"]]
    assert "test accuracy" in by_name  # metrics joined into the series
    markers = [s.x0 for s in fig.layout.shapes]
    assert steps[1] in markers
    first = parity_series["first_step_recovered"]
    assert (first in markers) if first is not None else len(markers) == 1


def test_irrep_share_figures(group_series):
    from ui.fourier.figures import KEY_COLOUR
    from ui.fourier.task_figures import (DECOMPOSITIONS, group_measures, irrep_names,
                                         irrep_share_bars)

    final = group_series["checkpoints"][-1]
    names = irrep_names(final)
    assert names == [i["name"] for i in final["embedding_irreps"]["irreps"]]
    fig = irrep_share_bars(final)
    present = [label for field, label in DECOMPOSITIONS if final.get(field)]
    assert [t.name for t in fig.data] == present and "logits" in present
    emb = fig.data[0]
    assert list(emb.x) == names
    assert list(emb.y) == [i["share"] for i in final["embedding_irreps"]["irreps"]]
    assert [n for n, c in zip(names, emb.marker.line.color) if c == KEY_COLOUR] == \
        [n for n in names if n in final["embedding_irreps"]["key_irreps"]]
    stars = [t.startswith("★") for t in fig.layout.xaxis.ticktext]
    assert stars == [n in final["key_irreps"] for n in names]
    assert final["group"] in fig.layout.title.text

    steps = [r["step"] for r in group_series["checkpoints"]]
    measures = group_measures(group_series, steps[0])
    by_name = {t.name: t for t in measures.data}
    assert list(by_name["test accuracy"].y) == [r["test_accuracy"]
                                                for r in group_series["checkpoints"]]
    assert [s.x0 for s in measures.layout.shapes] == [steps[0]]


def test_task_figures_follow_the_step(parity_series, group_series):
    from ui.fourier.task_figures import TASK_FIGURES, task_figures
    from workbench.errors import UserError

    for series in (parity_series, group_series):
        steps = [r["step"] for r in series["checkpoints"]]
        figs = task_figures(series, steps[0])
        assert list(figs) == list(TASK_FIGURES[series["task"]])
        first = next(iter(figs.values()))
        assert first.layout.title.text.startswith(f"step {steps[0]} ")
        assert next(iter(task_figures(series).values())).layout.title.text.startswith(
            f"step {steps[-1]} ")
    with pytest.raises(UserError):
        task_figures({"task": "modular-addition", "checkpoints": [{"step": 1}]})


def _page_layout():
    page = next(p for p in dash.page_registry.values()
                if p.get("path_template") == "/runs/<run_id>/fourier")
    return page["layout"]


def test_layout_dispatches_on_task(tmp_path):
    from ui.app import create_app

    store = RunStore(tmp_path / "home")
    _train(store)
    app = create_app(store.home)
    layout = _page_layout()
    with app.server.test_request_context():
        for ref, graph in (("tiny-parity", "fxt-walsh"), ("tiny-group", "fxt-irreps")):
            run_id = store.get_run(ref).id
            before = str(layout(run_id=run_id))
            assert "Compute" in before and "not computed yet" in before
            assert "No Fourier analysis" not in before and graph not in before
            _analyse(store, ref)
            after = str(layout(run_id=run_id))
            assert "fxt-summary" in after and graph in after and "fx-summary" not in after
            assert "computed over 3 checkpoints" in after


def test_widget_draws_the_task_figures(task_store, parity_series, group_series):
    from ui.fourier.task_figures import TASK_FIGURES
    from ui.fourier.widgets import FourierWidget

    for ref, series in (("tiny-parity", parity_series), ("tiny-group", group_series)):
        w = FourierWidget(ref, store=task_store)
        names = TASK_FIGURES[series["task"]]
        assert list(w.figures) == ["curves", *names]
        assert all(isinstance(w.figures[n], go.FigureWidget) and w.figures[n].data
                   for n in names)
        assert w.steps == [r["step"] for r in series["checkpoints"]]
        w.set_step(0)
        assert w.figures[names[0]].layout.title.text.startswith(f"step {w.steps[0]} ")
        w.set_neuron(3)  # no neuron picker for these tasks: a no-op
        assert w.step == w.steps[0]


@pytest.mark.browser
def test_fourier_page_for_parity_and_group_runs(dash_duo, store, screenshot):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from ui.app import create_app
    from workbench import jobs

    _train(store)
    parity, group = store.get_run("tiny-parity").id, store.get_run("tiny-group").id
    _analyse(store, "tiny-group")  # the group page reads a cached analysis
    dash_duo.start_server(create_app(store.home, poll_ms=500))

    # parity: from the run page, Compute runs the real job and the figures appear
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{parity}")
    dash_duo.wait_for_element(f"a[href='/runs/{parity}/fourier']", timeout=20).click()
    dash_duo.wait_for_contains_text("#fx-status", "not computed yet", timeout=20)
    dash_duo.find_element("#fx-compute").click()
    _wait(lambda: store.get_result(parity, "fourier", "job"), 20, "the job")
    job_id = store.get_result(parity, "fourier", "job")["job_id"]
    assert jobs.job_status(job_id, store=store).argv == ["fourier", parity, "--checkpoint",
                                                         "all", "--json"]
    _wait(lambda: "fxt-summary" in dash_duo.driver.page_source, JOB_TIMEOUT, "the results")
    assert jobs.job_status(job_id, store=store).status == "completed"
    _wait(lambda: _plots(dash_duo) == 4, 30, "four parity figures")
    _wait(lambda: "output Walsh spectrum" in _title(dash_duo, "fxt-walsh"), 30, "the spectrum")
    assert "parity set from the weights" in _title(dash_duo, "fxt-parity-set")
    assert _title(dash_duo, "fxt-hidden-progress").startswith("Hidden progress")
    assert "computed over 3 checkpoints" in dash_duo.find_element("#fx-status").text
    screenshot(dash_duo, "fourier-parity")

    # group: the cached analysis is drawn on load
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{group}/fourier")
    dash_duo.wait_for_contains_text("#fx-status", "computed over 3 checkpoints", timeout=20)
    _wait(lambda: _plots(dash_duo) == 2, 30, "two group figures")
    _wait(lambda: "irrep shares" in _title(dash_duo, "fxt-irreps"), 30, "the irrep shares")
    assert _title(dash_duo, "fxt-group-measures").startswith("Irrep measures")
    assert dash_duo.find_element("#fx-compute").text == "Recompute"
    screenshot(dash_duo, "fourier-group")

    def scrub_to_first() -> bool:
        # the handle is looked up afresh each try: the figures re-render around it, and on a
        # loaded machine a key press can land before the slider has focus
        if _title(dash_duo, "fxt-irreps").startswith("step 30 "):
            return True
        handle = dash_duo.driver.find_element(By.CSS_SELECTOR,
                                              "#fxt-step-group [role='slider']")
        handle.click()
        handle.send_keys(Keys.HOME)
        return False

    _wait(scrub_to_first, 60, "the first step")
    dash_duo.wait_for_contains_text("#fxt-step-group-label", "step 30", timeout=10)
