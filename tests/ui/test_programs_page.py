"""Transformer Program views: the inspection API, the notebook widget (asserting on the data it
shows) and the pages in headless Chromium (a tiny program trained in the test's store; a
training job launched from the form). Screenshots go to test-output/screenshots/programs*.png.
"""

from __future__ import annotations

import html
import re
import sys

import pytest

from programs.api import load_run, train_run
from programs.data import ProgramShape
from programs.discrete import run_discrete
from programs.inspect import (parse_settings, tokenize, trace_program, train_request,
                              unembedding)
from ui.programs.figures import head_figure, step_titles, trace_table, unembedding_table
from ui.programs.widgets import ProgramWidget
from workbench.errors import UserError
from workbench.store import RunStore
from browser_helpers import wait_until as _wait

TINY = {"max_len": 5, "vocab_size": 4, "n_samples": 300}


def train_tiny(store, name="rev-tiny", epochs=8):
    return train_run("reverse", preset_name="tiny", overrides={"epochs": epochs},
                     task_params=TINY, store=store, name=name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("programs") / "home")
    summary = train_tiny(store)
    return store, summary["run_id"], load_run(summary["run_id"], store)


# -- the inspection API ------------------------------------------------------------------------
def test_trace_matches_the_discrete_model(trained):
    _, _, loaded = trained
    prog = loaded.program
    for row in loaded.x_test[:20]:
        tokens = [prog.shape.input_vocab[i] for i in row.tolist()]
        trace = trace_program(prog, tokens)
        ref = run_discrete(prog, row[None])
        assert trace.predictions == [prog.shape.output_vocab[i]
                                     for i in ref.predictions[0].tolist()]
        for head in prog.cat_heads:  # the selection shown is the one the model made
            h = next(h for s in trace.steps for h in s.heads if h.name == head.name)
            assert h.chosen == ref.selected[head.name][0].tolist()
            assert all(sum(r) == 1 for r in h.selected)
        for v, name in enumerate(prog.cat_vars[2:], start=2):
            values = trace.variable(name).values
            assert len(values) == len(tokens)
            assert [int(x) if not isinstance(x, str) else prog.shape.input_vocab.index(x)
                    for x in values] == ref.cat[0, :, v].tolist()
        for v, name in enumerate(prog.num_vars):
            assert trace.variable(name).values == ref.num[0, :, v].tolist()
    # every module appears in the step of its layer
    assert [s.title for s in trace.steps] == ["embeddings"] + [f"layer {i}"
                                                               for i in range(prog.n_layers)]


def test_tokenize_errors_name_the_token(trained):
    shape = trained[2].program.shape
    assert tokenize("a b", shape)[:3] == ["BOS", "a", "b"]
    assert len(tokenize("a b", shape)) == shape.n_ctx  # padded like the training data
    assert tokenize("BOS a", shape, pad=False) == ["BOS", "a"]
    with pytest.raises(UserError, match="unknown token 'z'"):
        tokenize("a z", shape)
    with pytest.raises(UserError, match="at most"):
        tokenize("a " * shape.n_ctx, shape)
    with pytest.raises(UserError, match="at least one"):
        tokenize("  ", shape)


def test_tokenize_appends_the_end_marker():
    shape = ProgramShape(input_vocab=("BOS", "a", "b", "EOS", "PAD"), output_vocab=("a", "b"),
                         n_ctx=5, width=5)
    assert tokenize("b a", shape) == ["BOS", "b", "a", "EOS", "PAD"]
    assert tokenize("b EOS", shape) == ["BOS", "b", "EOS", "PAD", "PAD"]


def test_train_request_validates_like_the_cli():
    req = train_request("reverse", "tiny", parse_settings("epochs=3\ntask.max_len=5"), seed="2",
                        name="x")
    assert req.argv[:5] == ["programs", "train", "reverse", "--preset", "tiny"]
    assert req.config["epochs"] == 3 and req.config["seed"] == 2
    assert req.task_params["max_len"] == 5 and req.argv[-1] == "--json"
    assert req.task_params == req.run_config.task_params  # resolved: every parameter
    assert req.run_config.to_dict()["program"] == req.config
    for settings, message in (("epochs=0", "epochs must be >= 1"), ("bogus=1", "bogus"),
                              ("task.nope=1", "nope"), ("epochs", "key=value")):
        with pytest.raises(UserError, match=message):
            train_request("reverse", "tiny", parse_settings(settings))
    with pytest.raises(UserError, match="seed"):
        train_request("reverse", "tiny", {}, seed="x")


def test_tables_and_figures(trained):
    prog = trained[2].program
    trace = trace_program(prog, tokenize("a b c", prog.shape))
    last = len(step_titles(trace)) - 1
    out = trace_table(trace, last)
    assert out.row("prediction")[2:] == trace.predictions
    assert out.columns[2:4] == ["0: BOS", "1: a"]
    first = trace_table(trace, 0)
    assert [r[0] for r in first.rows] == ["tokens", "positions", "ones"]
    layer0 = trace_table(trace, 1)
    assert sum(c.startswith("new") for c in layer0.row_class) == len(trace.steps[1].variables)
    fig = head_figure(trace, 1)
    assert len(fig.data) == len(trace.steps[1].heads)
    assert [list(r) for r in fig.data[0].z][0] in ([1.0 if j == trace.steps[1].heads[0].chosen[0]
                                                    else 0.0 for j in range(len(trace.tokens))],
                                                   [0.5] + [0.0] * (len(trace.tokens) - 1))
    table = unembedding(prog, informative_only=False)
    full = unembedding_table(table)
    assert full.row("bias")[2:] == [round(x, 3) for x in prog.unembed_bias.tolist()]
    assert len(table.rows) >= len(unembedding(prog).rows)


# -- the notebook widget -----------------------------------------------------------------------
def test_program_widget_shows_code_trace_and_heads(trained):
    store, run_id, loaded = trained
    w = ProgramWidget("rev-tiny", store=store, text="a b c")
    assert not w.live and not w.polling
    assert "def run(tokens)" in w.source
    shown = html.unescape(re.sub(r"<[^>]+>", "", w.code.value))
    assert "def run(tokens)" in shown and "<span" in w.code.value  # highlighted
    assert "completed" in w.status.value and "epoch 8 / 8" in w.status.value
    expected = trace_program(loaded.program, tokenize("a b c", loaded.program.shape))
    assert w.trace.to_json() == expected.to_json()
    w.show_step(len(loaded.program.cat_vars))  # past the end: clamps to the output step
    assert w.step == len(w.trace.steps)
    assert w.table().row("prediction")[2:] == expected.predictions
    assert "prediction" in w.table_view.value
    head = loaded.program.cat_heads[0].name
    assert w.selection(head) == next(h.chosen for s in expected.steps for h in s.heads
                                     if h.name == head)
    w.show_step(1)
    assert len(w.heads.data) == len(expected.steps[1].heads)
    w.set_input("c c")
    assert w.trace.tokens[:3] == ["BOS", "c", "c"] and w.step == 0
    with pytest.raises(UserError, match="unknown token 'q'"):
        w.set_input("c q")
    assert "unknown token" in w.error.value and w.trace.tokens[1] == "c"
    w.input_box.value = "b a"  # typing in the notebook box
    assert w.trace.tokens[1:3] == ["b", "a"] and w.error.value == ""
    assert w.unembedding_table().columns[2:] == list(loaded.program.shape.output_vocab)
    assert any("widget" in k for k in w._repr_mimebundle_())


def test_program_widget_follows_training(tmp_path):
    store = RunStore(tmp_path / "home")
    run = store.create_run(kind="program", task="reverse", name="live",
                           config={"program": {"epochs": 4}})
    store.set_status(run.id, "running")
    store.log_metrics(run.id, 0, {"loss": 2.0, "temperature": 3.0})
    w = ProgramWidget("live", store=store)
    assert w.live and w.trace is None and "epoch 1 / 4" in w.status.value
    with pytest.raises(UserError, match="not finished"):
        w.table()
    store.log_metrics(run.id, 1, {"loss": 1.5, "temperature": 1.0})
    assert w.refresh()
    assert tuple(w.figure.data[0].y) == (2.0, 1.5) and tuple(w.figure.data[0].x) == (1, 2)
    store.set_status(run.id, "failed", "boom")
    assert w.refresh() is False and w.trace is None
    store.create_run(kind="train", task="x", name="other", config={})
    with pytest.raises(UserError, match="not a Transformer Program"):
        ProgramWidget("other", store=store)


# -- the pages in a browser --------------------------------------------------------------------


def _table_rows(dash_duo, selector="#pg-trace-table"):
    return dash_duo.driver.execute_script(
        f"return Array.from(document.querySelectorAll('{selector} tr')).map("
        "r => Array.from(r.children).map(c => c.innerText));")


@pytest.mark.browser
def test_program_page_code_trace_and_errors(dash_duo, store, screenshot):
    from ui.app import create_app

    summary = train_tiny(store)
    prog = load_run(summary["run_id"], store).program
    dash_duo.start_server(create_app(store.home, poll_ms=500))
    # the Run page links here for program runs, and for no other kind (Dash imported the
    # pages as ``pages.*``; importing ui.runs.run_page again would register it twice)
    analyses_for = sys.modules["ui.runs.run_page"].analyses_for
    link = ("Program", f"/runs/{summary['run_id']}/program")
    assert link in analyses_for(store.get_run(summary["run_id"]))
    other = store.create_run(kind="train", task="reverse", config={})
    assert not [a for a in analyses_for(other) if a[0] == "Program"]
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{summary['run_id']}/program")
    dash_duo.wait_for_contains_text("#pg-code", "def run(tokens)", timeout=20)
    # highlighted: dcc.Markdown marks up the python fence with highlight.js spans
    _wait(lambda: dash_duo.find_elements("#pg-code .hljs-keyword"), 10, "highlighted code")
    box = dash_duo.find_element("#pg-input")
    dash_duo.clear_input(box)
    box.send_keys("c a b\n")
    _wait(lambda: _table_rows(dash_duo)[0][2:5] == ["0: BOS", "1: c", "2: a"], 15,
          "the trace of the typed input")
    expected = trace_program(prog, tokenize("c a b", prog.shape))
    assert [r[0] for r in _table_rows(dash_duo)[1:]] == ["tokens", "positions", "ones"]
    dash_duo.find_element("#pg-next").click()  # layer 0: its variables and head selections
    _wait(lambda: "layer 0" in dash_duo.find_element("#pg-step-title").text, 10, "layer 0")
    rows = {r[0]: r[2:] for r in _table_rows(dash_duo)[1:]}
    for v in expected.steps[1].variables:
        assert rows[v.name] == [str(x) for x in v.values]
    n_heads = dash_duo.driver.execute_script(
        "const g = document.querySelector('#pg-heads .js-plotly-plot');"
        "return g && g.data ? g.data.length : -1;")
    assert n_heads == len(expected.steps[1].heads)
    screenshot(dash_duo, "programs-trace")
    for _ in range(prog.n_layers):
        dash_duo.find_element("#pg-next").click()
    _wait(lambda: "output" in dash_duo.find_element("#pg-step-title").text, 10, "the output")
    rows = {r[0]: r[2:] for r in _table_rows(dash_duo)[1:]}
    assert rows["prediction"] == expected.predictions
    assert len(_table_rows(dash_duo, "#pg-unembed-table")) > 2
    screenshot(dash_duo, "programs-output")
    dash_duo.driver.execute_script("document.getElementById('pg-code').scrollIntoView()")
    screenshot(dash_duo, "programs-code")
    box = dash_duo.find_element("#pg-input")
    dash_duo.clear_input(box)
    box.send_keys("a z\n")
    dash_duo.wait_for_contains_text("#pg-input-error", "unknown token 'z'", timeout=10)
    screenshot(dash_duo, "programs-bad-token")


@pytest.mark.browser
def test_train_from_the_programs_page(dash_duo, store, screenshot):
    from ui.app import create_app
    from workbench import jobs

    dash_duo.start_server(create_app(store.home, poll_ms=500))
    dash_duo.driver.get(f"{dash_duo.server_url}/programs")
    settings = dash_duo.wait_for_element("#pg-settings", timeout=20)
    settings.send_keys("epochs=0")
    dash_duo.find_element("#pg-launch").click()
    dash_duo.wait_for_contains_text("#pg-form-error", "epochs must be >= 1", timeout=10)
    assert jobs.list_jobs(store=store) == [] and store.list_runs() == []
    dash_duo.clear_input(settings)
    settings.send_keys("epochs=4\ntask.max_len=4\ntask.vocab_size=3\ntask.n_samples=100")
    dash_duo.find_element("#pg-launch").click()
    url = _wait(lambda: re.search(r"/runs/(r-[0-9a-f]{12})/program$",
                                  dash_duo.driver.current_url), 120, "the program page")
    run = store.get_run(url.group(1))
    assert run.kind == "program" and run.config["program"]["epochs"] == 4
    assert jobs.job_for_run(run.id, store=store) is not None  # linked by id, not by name
    dash_duo.driver.refresh()  # re-attach: rebuilt from the store
    dash_duo.wait_for_text_to_equal("#pg-status", "completed", timeout=120)
    dash_duo.wait_for_contains_text("#pg-code", "def run(tokens)", timeout=20)
    assert "epoch 4 / 4" in dash_duo.find_element("#pg-progress-text").text
    screenshot(dash_duo, "programs-trained")
    dash_duo.driver.get(f"{dash_duo.server_url}/programs")  # the job and the run are listed
    dash_duo.wait_for_contains_text("#pg-runs-table", run.name, timeout=20)
    dash_duo.wait_for_contains_text("#pg-jobs-list", "completed", timeout=20)
    screenshot(dash_duo, "programs-train")


def test_compile_from_the_program_page(dash_duo, store, screenshot):
    from ui.app import create_app

    categorical = train_run("reverse", preset_name="tiny",
                            overrides={"epochs": 8, "n_num_heads": 0, "n_num_mlps": 0},
                            task_params=TINY, store=store, name="rev-cat")
    numerical = train_tiny(store, name="rev-num")
    dash_duo.start_server(create_app(store.home, poll_ms=300))
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{categorical['run_id']}/program")
    dash_duo.wait_for_element("#pg-compile", timeout=20).click()
    dash_duo.wait_for_contains_text("#pg-compiled", "search its circuit", timeout=60)
    dash_duo.wait_for_contains_text("#pg-compile-feedback", "compiled", timeout=10)
    compiled = [r for r in store.list_runs(kind="compiled")
                if r.config["program_run"] == categorical["run_id"]]
    assert len(compiled) == 1 and compiled[0].status == "completed"
    screenshot(dash_duo, "programs-compiled")
    # a program with numerical heads and MLPs compiles too
    dash_duo.driver.get(f"{dash_duo.server_url}/runs/{numerical['run_id']}/program")
    dash_duo.wait_for_element("#pg-compile", timeout=20).click()
    dash_duo.wait_for_contains_text("#pg-compiled", "search its circuit", timeout=60)
    assert len(store.list_runs(kind="compiled")) == 2
