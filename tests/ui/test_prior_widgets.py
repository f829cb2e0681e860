"""The notebook ``PriorWidget``, built headless on the store of :mod:`test_prior_page` (results
made by the real API): its figures are the page's factories on what the store holds, for a model
run, its finetune run and a run without results; bad input to ``analyse`` / ``finetune`` starts
nothing; and (integration) an analysis started from the widget is followed until it lands."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from ui.figures import has_empty_state
from ui.prior.figures import accuracy_by_bin, error_vs_prior, finetune_comparison, r2_by_layer
from ui.prior.launch import prior_jobs
from workbench.errors import UserError
from workbench.store import RunStore
from test_prior_page import build_prior_home


@pytest.fixture(scope="module")
def prior_home(tmp_path_factory):
    return build_prior_home(tmp_path_factory.mktemp("prior-widgets"))


def _same(widget_figure, fig) -> bool:
    """A FigureWidget shows ``fig``: the same traces and the same title."""
    mine = widget_figure.to_dict()
    theirs = fig.to_dict()
    for trace in mine["data"]:
        trace.pop("uid", None)  # a FigureWidget names its traces
    return mine["data"] == theirs["data"] and \
        mine["layout"].get("title") == theirs["layout"].get("title")


def test_widget_draws_the_stored_analysis_and_finetune(prior_home):
    from ui.widgets import PriorWidget
    store = RunStore(prior_home)
    lm, tuned = store.get_run("lm"), store.get_run("tuned")
    result = next(iter(store.results(lm.id, "prior").values()))
    ft = store.get_result(tuned.id, "prior_finetune", "task=count")
    widget = PriorWidget("lm", store=store)
    assert not widget.live and widget.analysis == result and widget.finetune_id == tuned.id
    assert _same(widget.figures["bins"], accuracy_by_bin(result))
    assert _same(widget.figures["scatter"], error_vs_prior(result))
    assert _same(widget.figures["r2"], r2_by_layer(result))
    assert _same(widget.figures["finetune"], finetune_comparison(ft))
    assert f"localised blocks {result['localised_layers']}" in widget.status.value
    widget.set_split("values")
    assert _same(widget.figures["r2"], r2_by_layer(result, split="values"))
    own = PriorWidget(tuned.id, store=store)  # a finetune run shows its own comparison
    assert own.finetune_id == tuned.id and own.analysis is None
    assert _same(own.figures["finetune"], finetune_comparison(ft))
    assert has_empty_state(own.figures["bins"])
    legacy = PriorWidget("old-lm", store=store)  # the older storage layout reads the same
    assert legacy.analysis == result
    assert legacy.finetune_result["localised"] == ft["localised"]


def test_widget_without_results_and_bad_input(tmp_path, prior_home):
    from ui.widgets import PriorWidget
    store = RunStore(shutil.copytree(prior_home, tmp_path / "home"))
    bare = store.create_run(kind="pretrain", task="lm", name="bare", config={})
    widget = PriorWidget("bare", store=store)
    for name in ("bins", "scatter", "r2", "finetune"):
        assert has_empty_state(widget.figures[name])
    assert "no prior analysis" in widget.status.value
    with pytest.raises(UserError, match="nope"):
        PriorWidget("lm", store=store).analyse(task="nope")
    with pytest.raises(UserError, match="out of range"):
        PriorWidget("lm", store=store).finetune(layers="9", poll=False)
    # the form's checks, so the CLI's messages: a bad lr, KL weight or answer-value list
    with pytest.raises(UserError, match="lr must be positive, got -1.0"):
        PriorWidget("lm", store=store).finetune(lr=-1, poll=False)
    with pytest.raises(UserError, match="kl"):
        PriorWidget("lm", store=store).finetune(kl_weight=-2, poll=False)
    with pytest.raises(UserError, match="'99' is not an answer"):
        PriorWidget("lm", store=store).analyse(values="1,99", poll=False)
    with pytest.raises(UserError, match="no language-model checkpoint"):
        widget.analyse()
    assert prior_jobs(store) == [] and bare.id in {r.id for r in store.list_runs()}


@pytest.mark.integration
def test_widget_follows_an_analysis_it_started(tmp_path, prior_home):
    from ui.widgets import PriorWidget
    store = RunStore(shutil.copytree(prior_home, tmp_path / "home"))
    widget = PriorWidget("lm", store=store)
    before = widget.analysis
    repo = str(Path(__file__).resolve().parents[2])  # the job imports this checkout
    job = widget.analyse(task="count", n=20, poll=False,
                         env={"PYTHONPATH": repo, "OMP_NUM_THREADS": "1"})
    assert job.argv[:2] == ["probes", "prior"] and widget.live
    deadline = time.time() + 240
    while widget.refresh() and time.time() < deadline:
        time.sleep(0.5)
    assert prior_jobs(store)[0].status == "completed", prior_jobs(store)[0].log_tail()
    stored = next(iter(store.results(store.get_run("lm").id, "prior").values()))
    assert stored["n_examples"] == 20 != before["n_examples"]
    assert widget.analysis == stored and _same(widget.figures["bins"], accuracy_by_bin(stored))
