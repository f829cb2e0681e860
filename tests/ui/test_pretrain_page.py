"""Pretraining views: the figure factory, the form's validation (the CLI's rules, nothing
created on error), the notebook widget on a tiny trained run, and in headless Chromium a tiny
pretraining job launched from /pretrain, followed on its page until its curves are drawn."""

from __future__ import annotations

import pytest

from training.lm.api import pretrain
from ui.pretrain.figures import PRETRAIN_NAMES, device_text, pretrain_curves
from ui.pretrain.launch import check_form
from ui.figures import has_empty_state
from browser_helpers import wait_until

TINY = "n_layers=1\nd_model=32\nn_heads=2\nd_mlp=64\nn_ctx=32\nbatch_size=4\nsteps=20\n" \
       "log_every=5\neval_every=10\ncheckpoint_every=10\nlog_checkpoints=0"


def _overrides(text):
    return dict(line.split("=", 1) for line in text.splitlines())


def test_figure_traces_follow_the_series_order():
    fig = pretrain_curves({"train_loss": [(5, 3.0), (10, 2.5)], "mfu": [(5, 0.1)]})
    assert [t.name for t in fig.data] == [n.replace("_", " ") for n in PRETRAIN_NAMES]
    assert list(fig.data[0].x) == [5, 10] and list(fig.data[3].y) == [0.1]
    assert has_empty_state(pretrain_curves(empty="nothing yet"))
    assert "peak 989 TFLOP/s" in device_text({"device": "cuda", "name": "H100", "world_size": 8,
                                              "parallel": "fsdp", "bf16": True,
                                              "peak_tflops": 989.0, "peak_source": "H100"})


def test_form_checked_like_the_cli_and_nothing_created(store, arith_corpus, tmp_path):
    corpus = str(arith_corpus)
    assert check_form(corpus, "tiny", TINY, None, store).ok
    bad = check_form(corpus, "tiny", TINY + "\nwarmup=3", None, store)
    assert "unknown config key 'warmup'" in bad.errors["form"]
    assert "seq_len" in check_form(corpus, "tiny", "seq_len=999", None, store).errors["form"]
    assert "data" in check_form(str(tmp_path), "tiny", "", None, store).errors
    assert "key=value" in check_form(corpus, "tiny", "oops", None, store).errors["extra"]
    assert "name" in check_form(corpus, "tiny", "", "bad name!", store).errors
    assert store.list_runs() == []


@pytest.mark.integration
def test_widget_shows_the_runs_curves_and_device(store, arith_corpus):
    from ui.widgets import PretrainWidget

    result = pretrain(str(arith_corpus), overrides=_overrides(TINY), name="lm", store=store)
    widget = PretrainWidget("lm", store=store)
    steps, losses = widget.series("train_loss")
    assert steps == (5, 10, 15, 20) and len(losses) == 4
    assert widget.series("tokens_per_second")[0] == steps
    assert widget.series("val_loss")[0] == (10, 20)
    assert "cpu" in widget.status.value and "completed" in widget.status.value
    assert not widget.live and result.steps == 20


@pytest.mark.browser
def test_launch_from_the_page_and_see_the_curves(dash_duo, store, arith_corpus, screenshot):
    from ui.app import create_app

    dash_duo.start_server(create_app(store.home, poll_ms=500))
    dash_duo.wait_for_page(url=dash_duo.server_url + "/pretrain", timeout=20)
    dash_duo.find_element("#pt-extra").send_keys(TINY)
    dash_duo.find_element("#pt-name").send_keys("from-page")
    dash_duo.find_element("#pt-launch").click()  # no data directory yet
    dash_duo.wait_for_contains_text("#pt-data-err", "data directory", timeout=20)
    assert store.list_runs() == []  # refused before anything was created
    dash_duo.find_element("#pt-data").send_keys(str(arith_corpus))
    dash_duo.find_element("#pt-launch").click()
    dash_duo.wait_for_element("#pt-progress", timeout=30)  # the new run's page
    dash_duo.wait_for_contains_text("#pt-progress", "done", timeout=240)
    points = wait_until(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#pt-curves .js-plotly-plot');"
        "return g && g.data ? [g.data[0].x.length, g.data[2].x.length, g.data[3].x.length]"
        " : null;"), 30, "the curves")
    assert points == [4, 4, 4]  # train loss, tokens/s, MFU at steps 5, 10, 15, 20
    assert "cpu" in dash_duo.find_element("#pt-device").text
    assert "step 20" in dash_duo.find_element("#pt-checkpoints").text
    assert store.get_run("from-page").status == "completed"
    screenshot(dash_duo, "pretrain-run")
