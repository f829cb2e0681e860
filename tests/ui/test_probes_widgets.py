"""The probes notebook widgets built headless over a store holding real fit results and
knowledge results (the builders of test_probes_page): their figures show what the store
holds, switch to a series by key, and name the command that makes missing data."""

from __future__ import annotations

import pytest

from tests.ui.test_probes_page import knowledge_result, store_fit
from ui.figures import has_empty_state
from ui.probes.data import fit_results


@pytest.fixture
def fitted(store, seed):
    run = seed(store, name="tiny")
    single = store_fit(run.id)
    series = [store_fit(run.id, step=s, acts=f"/acts/s/step_{s:08d}", signal=1.0 + i, seed=i,
                        control=False, baseline=False) for i, s in enumerate((10, 20))]
    return run, single, series


def test_probes_widget_shows_the_stored_fit(store, fitted):
    from ui.widgets import CAPABILITY_WIDGETS, ProbesWidget

    assert {"ProbesWidget", "KnowledgeWidget"} <= set(CAPABILITY_WIDGETS)
    run, single, series = fitted
    widget = ProbesWidget("tiny", store=store, key=single)
    stored = store.get_result(run.id, "probes", single)
    assert [list(map(list, t.z)) for t in widget.figure.data][:3] == [
        stored["test_score"], stored["control_score"], stored["selectivity"]]
    assert list(widget.baselines.data[1].y) == stored["embedding_baseline"]
    assert has_empty_state(widget.series)  # one checkpoint: the series names the command
    assert stored["best"]["site"] in widget.status.value and not widget.live

    over = ProbesWidget(run.id, store=store, key=series[1])
    assert over.group.steps == [10, 20]
    assert list(over.series.data[0].y) == [store.get_result(run.id, "probes", k)["best"][
        "test_score"] for k in series]
    assert not has_empty_state(over.series)
    assert len(over.figure.data) == 1  # no control, no baseline: one heatmap


def test_probes_widget_without_results_names_the_command(store, seed):
    from ui.widgets import ProbesWidget

    run = seed(store, name="bare")
    widget = ProbesWidget("bare", store=store)
    assert widget.group is None and has_empty_state(widget.figure)
    assert "probes fit" in widget.status.value and not widget.refresh()
    store_fit(run.id)  # a fit arrives: the next refresh draws it
    widget.refresh()
    assert list(map(list, widget.figure.data[0].z)) == next(iter(
        fit_results(store, run.id).values()))["test_score"]
    assert not has_empty_state(widget.figure)


def test_knowledge_widget_shows_the_result_and_the_store_wide_views(store):
    from ui.widgets import KnowledgeWidget

    runs = []
    for name, aug, over in (("lm-a", "single", True), ("lm-b", "multi5+permute", False)):
        lm = store.create_run(kind="pretrain", task="lm", config={"data": name}, name=name)
        key, payload = knowledge_result(lm.id, augmentation=aug, protocol="mixed",
                                        seed=len(runs), over_training=over)
        store.put_result(lm.id, "knowledge", key, payload)
        runs.append((lm, key, payload))
    (a, key_a, payload_a), (b, _, payload_b) = runs
    widget = KnowledgeWidget("lm-a", store=store)
    stored = store.get_result(a.id, "knowledge", key_a)
    assert widget.payload == stored
    assert [t.name for t in widget.figure.data] == stored["p_probe"]["attributes"]
    assert list(widget.figure.data[4].y) == [r[4] for r in stored["p_probe"]["accuracy"]]
    assert list(widget.q_training.data[0].x) == stored["q_probe_over_training"]["steps"]
    assert len(widget.scatter.data) == 2  # both results in the store
    assert widget.table.value.count("<tr") == 3 and "multi5+permute" in widget.table.value
    assert f"{payload_b['qa_accuracy']['all']:.3f}" in widget.table.value
    assert not widget.live  # no knowledge job running for this run
    other = KnowledgeWidget("lm-b", store=store)
    assert has_empty_state(other.q_training)  # this result has no Q-probe over training
    note = other.q_training.layout.annotations[-1].text.replace("<br>", " ")
    assert "probes knowledge run --series-checkpoints" in note


def test_knowledge_widget_without_results_names_the_command(store, seed):
    from ui.widgets import KnowledgeWidget

    seed(store, name="bare")
    widget = KnowledgeWidget("bare", store=store)
    assert widget.payload is None and has_empty_state(widget.figure)
    assert "probes knowledge run" in widget.status.value
    assert "no knowledge results in the store yet" in widget.table.value


def test_a_running_knowledge_job_is_followed_by_the_widget_and_the_page(store):
    """A knowledge job (its command stands in for the CLI and just waits) is matched to the
    pretrain run of its config, read from the store: the widget stays live, the page's job
    list shows the run's progress; cancelled, both see it end."""
    import sys
    from pathlib import Path

    from probes.knowledge import KnowledgeConfig
    from probes.knowledge import pretrain_run_of
    from ui.probes.launch import job_argv, knowledge_jobs
    from ui.probes.parts import job_items
    from ui.widgets import KnowledgeWidget
    from workbench.jobs import cancel_job, start_job

    cfg = KnowledgeConfig(people=16, steps=4)
    data = Path(store.home) / "knowledge" / cfg.key(pretraining_only=True) / "data"
    lm = store.create_run(kind="pretrain", task="lm", name="lm",
                          config={"data": str(data.resolve()), "train": {"steps": 4}})
    store.set_status(lm.id, "running")
    store.log_metrics(lm.id, 2, {"train_loss": 1.5})
    assert pretrain_run_of(store, cfg).id == lm.id
    repo = str(Path(__file__).resolve().parents[2])
    job = start_job(job_argv(cfg), store=store, env={"PYTHONPATH": repo},
                    command=[sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert [j.id for j in knowledge_jobs(store)] == [job.id]
        widget = KnowledgeWidget("lm", store=store)
        assert widget.live and "knowledge job running" in widget.status.value
        text = str(job_items(store, knowledge_jobs(store)))
        assert "2 / 4 steps" in text and "of pretraining run " in text and "16 people" in text
    finally:
        cancel_job(job.id, store=store, grace=2)
    assert not widget.refresh()
    [ended] = knowledge_jobs(store)
    assert ended.done and f"status-{ended.status}" in str(job_items(store, [ended]))
