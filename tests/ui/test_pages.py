"""Page logic without a browser: the runs table query, filter/sort, the form's validation with
the CLI's rules, the poll callback reading only new rows, and the figure factory."""

from __future__ import annotations

import sys

import dash
import pytest

from ui.app import create_app
from ui.polling import poll_run
from ui.runs.data import filter_sort, runs_overview
from ui.figures import CURVE_NAMES, training_curves
from ui.runs.launch import form_fields, validate


def test_runs_overview_metrics_for_finished_and_running_runs(store, seed):
    done = seed(store, status="completed", acc=0.8, name="a")
    running = seed(store, status="running", evals=3, task="sparse-parity")
    rows = {r["id"]: r for r in runs_overview(store)}
    assert rows[done.id]["test_acc"] == pytest.approx(0.4)  # from the summary
    assert rows[running.id]["train_loss"] == pytest.approx(2.0 / 3)  # latest logged row
    assert rows[running.id]["steps"] == 100 and rows[running.id]["status"] == "running"
    assert [r["id"] for r in runs_overview(store)] == [running.id, done.id]  # newest first


def test_filter_and_sort(store, seed):
    for i, acc in enumerate((0.2, 0.9, 0.5)):
        seed(store, acc=acc, name=f"run-{i}", task="sort" if i == 1 else "reverse")
    seed(store, status="failed", name="broken", evals=0)
    rows = runs_overview(store)
    assert [r["name"] for r in filter_sort(rows, text="SORT")] == ["run-1"]
    assert [r["name"] for r in filter_sort(rows, status="failed")] == ["broken"]
    by_acc = filter_sort(rows, sort="test_acc", descending=True)
    assert [r["name"] for r in by_acc] == ["run-1", "run-2", "run-0", "broken"]  # None last
    assert [r["name"] for r in filter_sort(rows, sort="test_acc", descending=False)][:3] == [
        "run-0", "run-2", "run-1"]


def test_form_validation_uses_cli_rules():
    fields = {f.key: f.value for f in form_fields("modular-addition", "tiny")}
    assert fields["task.p"] == "13" and fields["train.steps"] == "150"
    ok = validate("modular-addition", "tiny", fields)
    assert ok.ok and ok.overrides == {}  # unchanged values are not sent as overrides
    bad = validate("modular-addition", "tiny",
                   {**fields, "train.lr": "-1", "model.d_model": "wide", "task.p": "14"})
    assert set(bad.errors) >= {"train.lr", "model.d_model"}
    assert "lr must be positive" in bad.errors["train.lr"]
    assert "d_model" in bad.errors["model.d_model"]
    assert "steps needs a value" in validate("modular-addition", "tiny",
                                             {**fields, "train.steps": ""}).errors["train.steps"]
    extra = validate("modular-addition", "tiny", fields, extra="no_such_key=1")
    assert "unknown config key" in extra.errors["extra"]
    assert "invalid run name" in validate("modular-addition", "tiny", fields,
                                          name="bad name!").errors["name"]


def test_poll_reads_only_new_rows(store, seed):
    run = seed(store, status="running", evals=2, steps=1000)
    first = poll_run(store, run.id)
    assert len(first.rows) == 10 and first.last_step == 20 and not first.finished
    store.log_metrics(run.id, 30, {"train_loss": 0.1})
    second = poll_run(store, run.id, since_id=first.last_id, last_step=first.last_step)
    assert [r[1:] for r in second.rows] == [(30, "train_loss", 0.1)]
    assert second.last_step == 30


def test_poll_callback_patches_new_points(store, seed):
    run = seed(store, status="running", evals=1, steps=1000)
    app = create_app(store.home)
    page = sys.modules["ui.runs.run_page"]
    with app.server.test_request_context("/"):
        page.layout(run_id=run.id)
        state = {"run_id": run.id, "last_id": 0, "last_step": 0, "n_ckpt": 0}
        out = page.poll(1, state)
        patch = out[0].to_plotly_json()
        assert len(patch["operations"]) == 2 * 4  # x and y of every curve trace
        assert out[3].startswith("10 / 1,000 steps")
        state = out[-1]
        assert page.poll(2, state)[0] is dash.no_update  # no new rows, nothing sent
        store.set_status(run.id, "completed")
        out = page.poll(3, state)
        assert out[4] == "completed" and out[9] is True  # interval disabled when finished


def test_run_page_links_the_analyses_that_apply(store, seed):
    create_app(store.home)
    page = sys.modules["ui.runs.run_page"]
    modular, other = seed(store), seed(store, task="sort")
    dash.register_page("test_analysis_page", path_template="/runs/<run_id>/demo",
                       name="Demo analysis", layout=lambda **kw: None,
                       analysis=lambda run: run.task.startswith("modular"))
    try:
        # The real analysis pages (Fourier, circuits, ...) register too; look at ours.
        assert ("Demo analysis", f"/runs/{modular.id}/demo") in page.analyses_for(modular)
        assert all(not href.endswith("/demo") for _, href in page.analyses_for(other))
    finally:
        dash.page_registry.pop("test_analysis_page")


def test_training_curves_trace_order():
    fig = training_curves({"test_acc": [(1, 0.5), (2, 0.75)]}, log_x=True)
    assert [t.name for t in fig.data] == [n.replace("_", " ") for n in CURVE_NAMES]
    assert fig.data[3].y == (0.5, 0.75) and fig.layout.xaxis.type == "log"
