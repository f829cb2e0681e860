"""Figures without data yet show a message naming what makes the data, not empty axes; the
first data brings the axes back (pages replace the figure once, widgets clear the message)."""

from __future__ import annotations

import sys

import dash
import plotly.graph_objects as go

from ui.app import create_app
from ui.figures import (EMPTY_STATE, clear_empty_state, empty_state, has_empty_state,
                        training_curves)
from browser_helpers import find_component as _find


def _message(fig) -> str | None:
    return next((a.text for a in fig.layout.annotations if a.name == EMPTY_STATE), None)


def test_empty_state_hides_axes_and_comes_off():
    fig = training_curves({}, empty="nothing yet")
    assert _message(fig) == "nothing yet" and fig.layout.xaxis.visible is False
    assert all(a.visible is False for a in fig.layout.annotations if a.name != EMPTY_STATE)
    assert len(fig.data) == 4  # the traces stay, so pollers can extend them
    widget = go.FigureWidget(fig)
    clear_empty_state(widget)
    assert not has_empty_state(widget) and widget.layout.xaxis.visible is True
    assert [a.text for a in widget.layout.annotations] == ["loss", "accuracy"]
    assert not has_empty_state(training_curves({"train_loss": [(1, 2.0)]}, empty="nothing yet"))
    assert not has_empty_state(training_curves({}))  # no message asked for: plain axes
    assert _message(empty_state(go.Figure(), "x")) == "x"


def test_sweep_chart_before_any_sweep_names_the_command(store, tmp_path):
    from ui.circuits.figures import faithfulness_curves

    assert "workbench circuits sweep" in _message(faithfulness_curves([]))
    rows = [{"method": "eap", "model": "m", "task": "t", "n_edges": 4, "kl": 0.1}]
    assert not has_empty_state(faithfulness_curves(rows))
    create_app(store.home)
    page = sys.modules["ui.circuits.index_page"]
    figure, table, error = page.show_sweep(None, "")
    assert "pick one above" in _message(figure) and "workbench circuits sweep" in \
        _message(figure) and error == ""
    figure, _, error = page.show_sweep(None, str(tmp_path / "missing"))
    assert _message(figure) and "not a sweep directory" in error


def test_run_page_curves_start_empty_then_fill(store, seed):
    run = seed(store, status="running", evals=0, steps=1000)
    app = create_app(store.home)
    page = sys.modules["ui.runs.run_page"]
    with app.server.test_request_context("/"):
        body = page.layout(run_id=run.id)
        graph = _find(body, "run-curves")
        assert "first evaluation" in _message(go.Figure(graph.figure))
        state = _find(body, "run-poll-state").data
        assert state["empty"] is True
        assert page.poll(1, state, ["x"])[0] is dash.no_update  # still nothing
        store.log_metrics(run.id, 10, {"train_loss": 1.0, "test_acc": 0.2})
        out = page.poll(2, state, ["x"])
        figure, state = out[0], out[-1]
        assert isinstance(figure, go.Figure) and not has_empty_state(figure)
        assert figure.data[0].x == (10,) and figure.layout.xaxis.type == "log"
        store.log_metrics(run.id, 20, {"train_loss": 0.5})
        patch = page.poll(3, state, ["x"])[0].to_plotly_json()  # later rows: a Patch again
        assert len(patch["operations"]) == 2


def test_widgets_show_the_message_until_data_comes(store, seed):
    from ui.widgets import RunWidget

    run = seed(store, status="running", evals=0, steps=1000)
    w = RunWidget(run.id, store=store)
    assert "no metrics yet" in _message(w.figure)
    store.log_metrics(run.id, 10, {"train_loss": 1.0})
    w.refresh()
    assert not has_empty_state(w.figure) and w.series("train_loss")[0] == (10,)


