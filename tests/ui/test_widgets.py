"""Notebook widgets on a finished and on a running run (rows written by the test)."""

from __future__ import annotations

import time

import plotly.graph_objects as go

from ui.widgets import LiveWidget, RunWidget


def test_finished_run(store, seed):
    run = seed(store, status="completed", steps=100, evals=4, name="done-run")
    w = RunWidget("done-run", store=store, poll=True)
    assert isinstance(w.figure, go.FigureWidget) and isinstance(w, LiveWidget)
    assert not w.live and not w.polling  # nothing to poll for a finished run
    steps, values = w.series("test_acc")
    assert steps == (25, 50, 75, 100)
    assert values == tuple(v for _, v in store.metric_history(run.id)["test_acc"])
    assert "completed" in w.status.value and "100 / 100" in w.status.value
    bundle = w._repr_mimebundle_()
    assert any("widget" in k for k in bundle)


def test_running_run_refresh_reads_only_new_rows(store, seed):
    run = seed(store, status="running", steps=1000, evals=2)
    w = RunWidget(run.id, store=store)
    assert w.live and w.series("train_loss")[0] == (10, 20)
    assert "running" in w.status.value and "20 / 1,000" in w.status.value
    first_id = w.last_id
    store.log_metrics(run.id, 30, {"train_loss": 0.5, "test_loss": 0.7, "train_acc": 0.9,
                                   "test_acc": 0.4})
    assert w.refresh() is True
    assert w.series("train_loss") == ((10, 20, 30), (2.0, 1.0, 0.5))
    assert w.last_id == first_id + 4
    store.set_status(run.id, "completed")
    assert w.refresh() is False


def test_background_polling_follows_a_run(store, seed):
    run = seed(store, status="running", steps=1000, evals=1)
    w = RunWidget(run.id, store=store, poll=True, interval=0.05)
    assert w.polling
    for step in (20, 30, 40):
        store.log_metrics(run.id, step, {"train_loss": 1.0 / step, "test_acc": 0.1})
    deadline = time.time() + 10
    while len(w.series("train_loss")[0]) < 4 and time.time() < deadline:
        time.sleep(0.05)
    assert w.series("train_loss")[0] == (10, 20, 30, 40)
    assert w.series("test_acc")[0] == (10, 20, 30, 40)
    store.set_status(run.id, "completed")
    w._thread.join(10)
    assert not w.polling and not w.live
    w.set_log_axes(log_x=True, log_y=True)
    assert w.figure.layout.xaxis.type == "log" and w.figure.layout.yaxis.type == "log"
