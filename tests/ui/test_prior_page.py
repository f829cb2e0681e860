"""Prior-localisation pages: results made by the real API (prior_analysis, prior_finetune on a
tiny random Llama held by a pretrain-kind run, seconds) read back in both storage layouts;
figures against the store; the pages and their callbacks; the form checked with the CLI's rules;
in headless Chromium, an analysis launched from /prior and followed until it is drawn."""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import dash
import pytest

from ui.figures import has_empty_state
from ui.prior.figures import (COMPARISON, accuracy_by_bin, error_vs_prior, finetune_comparison,
                              fmt, r2_by_layer)
from ui.prior.launch import check_form, prior_jobs
from ui.prior.results import analyses, finetune_result, finetune_runs, prior_runs
from workbench.errors import UserError
from workbench.store import RunStore
from browser_helpers import wait_until
from browser_helpers import find_component as _find

STEP = 5  # the checkpoint step of the model runs


def build_prior_home(root):
    """A store with: run ``lm`` (kind pretrain, one HF checkpoint: a tiny random Llama) with a
    real prior analysis stored as the CLI stores it, the real finetune run ``tuned`` made from
    it, and run ``old-lm`` holding the same results in the older layout (kind ``probes``,
    ``prior task=…`` key; a finetune run ``old-tuned`` with only ``prior_finetune.json``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from probes.prior import prior_analysis, store_prior_result
    from probes.prior_finetune import FinetuneConfig, prior_finetune, split_values
    from probes.sources import load_model
    from training.corpora.prior_tasks import prior_task
    from training.lm.tokenizer import save_hf_tokenizer, train_tokenizer

    store = RunStore(root / "home")
    task = prior_task("count")
    texts = [s.prompt + s.answer for s in task.stimuli(80, seed=3)]
    texts += [task.prior_context + task.answer_text(v) for v in task.values]
    tok = train_tokenizer(texts, 300)
    config = LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=128, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    runs = {}
    for name in ("old-lm", "lm"):
        run = store.create_run(kind="pretrain", task="lm", name=name,
                               config={"model": {"n_layers": 4}})
        directory = store.layout(run.id).model_dir(STEP)
        LlamaForCausalLM(config).save_pretrained(str(directory))
        save_hf_tokenizer(tok, directory)
        store.add_artifact(run.id, directory / "model.safetensors", "checkpoint", step=STEP)
        store.set_status(run.id, "completed")
        runs[name] = store.get_run(run.id)
    model = load_model("lm", store=store)
    result = prior_analysis(model, task, n=40, seed=0).to_json()
    key = store_prior_result(store, runs["lm"].id, result)
    store.put_result(runs["old-lm"].id, "probes", f"prior {key}", result)
    train, held = split_values(task)
    cfg = FinetuneConfig(task="count", layers=tuple(result["localised_layers"]), held_out=held,
                         train_values=train, steps=2, batch_size=4, n_eval=20)
    prior = {r["value"]: r["log_prior"] for r in result["values"]}
    control = [b for b in range(4) if b not in result["localised_layers"]][:1]
    directory = store.layout(runs["lm"].id).model_dir(STEP)
    ft = prior_finetune(directory, model.tokenizer, task, cfg, prior, control, store=store,
                        parent=runs["lm"].id, name="tuned")
    old = store.create_run(kind="prior-finetune", task="count", name="old-tuned",
                           parent=runs["old-lm"].id,
                           config={**cfg.to_dict(), "parent": runs["old-lm"].id,
                                   "control_layers": control})
    evaluations = {k: getattr(ft, k) for k in COMPARISON}
    (store.run_dir(old.id) / "prior_finetune.json").write_text(json.dumps(evaluations))
    store.set_status(old.id, "completed")
    return store.home


@pytest.fixture(scope="module")
def prior_home(tmp_path_factory):
    return build_prior_home(tmp_path_factory.mktemp("prior-ui"))


@pytest.fixture
def home_copy(prior_home, tmp_path):
    """A copy of the module's store for a test that writes to it (jobs, new results)."""
    return shutil.copytree(prior_home, tmp_path / "prior-home")


def _stored(home):
    store = RunStore(home)
    lm = store.get_run("lm")
    key, result = next(iter(store.results(lm.id, "prior").items()))
    tuned = store.get_run("tuned")
    return store, lm, key, result, tuned, store.get_result(tuned.id, "prior_finetune", "task=count")


def _notes(fig) -> str:
    """The annotation texts of a figure (where an empty state says what to run)."""
    return " ".join(str(a.text) for a in fig.layout.annotations)


def test_results_are_read_in_both_layouts(prior_home, store):
    prior_store, lm, key, result, tuned, ft = _stored(prior_home)
    assert key == f"task=count step={STEP}" and ft is not None
    assert analyses(prior_store, lm.id) == {key: result}
    old = prior_store.get_run("old-lm")
    assert analyses(prior_store, old.id) == {key: result}  # the legacy key, normalised
    assert finetune_result(prior_store, tuned) == ft
    legacy = finetune_result(prior_store, prior_store.get_run("old-tuned"))
    assert all(legacy[k] == ft[k] for k in COMPARISON)
    assert legacy["layers"] == ft["layers"] and legacy["control_layers"] == ft["control_layers"]
    assert [r.name for r in finetune_runs(prior_store, lm.id)] == ["tuned"]
    listed = {row["run"].name: row for row in prior_runs(prior_store)}
    assert set(listed) == {"lm", "old-lm", "tuned", "old-tuned"}
    assert [r.name for r in listed["lm"]["finetunes"]] == ["tuned"]
    # where both layouts hold a key, the "prior" kind wins
    run = store.create_run(kind="pretrain", task="lm", config={})
    store.put_result(run.id, "probes", f"prior {key}", {**result, "n_examples": 1})
    store.put_result(run.id, "prior", key, result)
    store.put_result(run.id, "probes", "step=5 target=x", {"not": "prior"})
    assert analyses(store, run.id) == {key: result}


def _scrambled(result: dict, seed: int) -> dict:
    """The API's result with every float replaced by a random one: a swapped trace shows."""
    rng = random.Random(seed)

    def walk(x):
        if isinstance(x, float):
            return rng.uniform(-1, 1)
        if isinstance(x, (dict, list)):
            return {k: walk(v) for k, v in x.items()} if isinstance(x, dict) else list(map(walk, x))
        return x
    return walk(result)


def test_figures_show_what_the_store_holds(prior_home):
    _, _, _, stored, _, ft = _stored(prior_home)
    for result in (stored, _scrambled(stored, 7)):
        bins = accuracy_by_bin(result)
        order = [b for b in ("common", "medium", "rare") if b in result["accuracy_by_bin"]]
        assert list(bins.data[0].y) == [result["accuracy_by_bin"][b]["accuracy"] for b in order]
        assert list(bins.data[1].y) == [result["instructed_accuracy_by_bin"][b]["accuracy"]
                                        for b in order]
        scatter = error_vs_prior(result)
        assert [t.name for t in scatter.data] == ["common", "medium", "rare"]
        for trace in scatter.data:
            rows = [r for r in result["values"] if r["condition"] == trace.name]
            assert list(trace.text) == [r["value"] for r in rows]
            assert list(trace.x) == [r["log_prior"] for r in rows]
            assert list(trace.y) == pytest.approx([1 - r["accuracy"] for r in rows])
        assert sum(len(t.x) for t in scatter.data) == len(result["values"])
        assert fmt(result["correlation"]["rho"]) in scatter.layout.title.text
        for split, real, control in (("prompts", "r2", "shuffled_r2"),
                                     ("values", "r2_held_out_values",
                                      "shuffled_r2_held_out_values")):
            fig = r2_by_layer(result, split=split)
            assert len(fig.data) == 2 * len(result["positions"]) + 1
            for j in range(len(result["positions"])):
                assert list(fig.data[2 * j].x) == result["sites"]
                assert list(fig.data[2 * j].y) == [row[j] for row in result[real]]
                assert list(fig.data[2 * j + 1].y) == [row[j] for row in result[control]]
            marked = [result["sites"].index(f"resid.{b + 1}") for b in result["localised_layers"]]
            assert list(fig.data[-1].x) == [result["sites"][i] for i in marked]
            assert list(fig.data[-1].y) == [result[real][i][-1] for i in marked]
    comparison = finetune_comparison(ft)
    assert list(comparison.data[0].y) == [ft[k]["held_out_accuracy"] for k in COMPARISON]
    assert list(comparison.data[1].y) == [ft[k]["correlation"]["rho"] for k in COMPARISON]
    assert any(str(ft["layers"]) in label for label in comparison.data[0].x)
    for factory in (accuracy_by_bin, error_vs_prior, r2_by_layer, finetune_comparison):
        assert has_empty_state(factory(None, empty="make it"))
        assert not has_empty_state(factory(ft if factory is finetune_comparison else result,
                                           empty="make it"))


@pytest.fixture
def app_on(prior_home):
    from ui.app import create_app
    return create_app(prior_home)


def test_run_page_draws_the_stored_analysis_and_finetune(app_on, prior_home):
    store, lm, key, result, tuned, ft = _stored(prior_home)
    page = sys.modules["ui.prior.run_page"]
    runs_page = sys.modules["ui.runs.run_page"]
    with app_on.server.test_request_context("/"):
        body = page.layout(run_id=lm.id)
        assert _find(body, "pr-pick").value == key
        assert _find(body, "pr-bins").figure == accuracy_by_bin(result)
        assert _find(body, "pr-r2").figure == r2_by_layer(result)
        assert _find(body, "pr-ft-pick").value == tuned.id
        assert _find(body, "pr-ft").figure == finetune_comparison(ft)
        rows = _find(body, "pr-ft-rows")
        assert len(rows.children.children) == 1 + len(COMPARISON)  # header + evaluations
        assert str(result["localised_layers"]) in str(_find(body, "pr-summary").children)
        tuned_body = page.layout(run_id=tuned.id)
        parent = _find(tuned_body, "pr-parent")
        assert f"/runs/{lm.id}/prior" in str(parent.children)
        assert _find(tuned_body, "pr-ft").figure == finetune_comparison(ft)
        assert has_empty_state(_find(tuned_body, "pr-bins").figure)  # no analysis of its own
        assert "workbench probes prior tuned" in _notes(_find(tuned_body, "pr-bins").figure)
        old_tuned = store.get_run("old-tuned")
        assert _find(page.layout(run_id=old_tuned.id), "pr-ft").figure == \
            finetune_comparison(finetune_result(store, old_tuned))
        links = dict(runs_page.analyses_for(lm))
        assert links["Prior localisation"] == f"/runs/{lm.id}/prior"
        # callbacks: the R² split by answer value, the finetune picker
        bins, scatter, r2, _ = page.show_analysis(key, "values", {"run_id": lm.id})
        assert r2 == r2_by_layer(result, split="values") and bins == accuracy_by_bin(result)
        fig, table, _ = page.show_finetune(tuned.id, {"run_id": lm.id})
        assert fig == finetune_comparison(ft)


def test_run_without_results_names_the_commands(store):
    from ui.app import create_app
    bare = store.create_run(kind="pretrain", task="lm", name="bare", config={})
    app = create_app(store.home)
    page = sys.modules["ui.prior.run_page"]
    with app.server.test_request_context("/"):
        assert "Prior localisation" not in dict(
            sys.modules["ui.runs.run_page"].analyses_for(bare))
        body = page.layout(run_id=bare.id)
        for graph in ("pr-bins", "pr-scatter", "pr-r2"):
            fig = _find(body, graph).figure
            assert has_empty_state(fig) and "workbench probes prior bare" in _notes(fig)
        assert "workbench probes prior-finetune bare" in _notes(_find(body, "pr-ft").figure)
        assert "Run not found" in str(page.layout(run_id="r-000000000000"))


def test_index_lists_the_prior_runs_and_the_poll_picks_up_new_results(home_copy):
    from ui.app import create_app
    store = RunStore(home_copy)
    lm, tuned = store.get_run("lm"), store.get_run("tuned")
    app = create_app(home_copy)
    index = sys.modules["ui.prior.index_page"]
    page = sys.modules["ui.prior.run_page"]
    with app.server.test_request_context("/"):
        body = index.layout(model="lm")
        listed = str(_find(body, "pr-runs-list"))
        for row in prior_runs(store):
            assert f"/runs/{row['run'].id}/prior" in listed
        assert _find(body, "pr-model").value == lm.id
        assert {o["value"] for o in _find(body, "pr-model").options} >= {lm.id, tuned.id}
        assert _find(body, "pr-poll").disabled  # no job running
        # a result stored after the page was built (a job that just ended) is shown
        layout = page.layout(run_id=lm.id)
        data = _find(layout, "pr-run").data
        result = next(iter(store.results(lm.id, "prior").values()))
        new = {**result, "model": {**result["model"], "step": 9}, "n_examples": 3}
        from probes.prior import store_prior_result
        key = store_prior_result(store, lm.id, new)
        out = page.poll(1, data)
        assert out[3] == key and key in [o["value"] for o in out[2]]
        assert out[6]["keys"][-1] == key
        assert page.poll(1, out[6])[3] is dash.no_update  # nothing new: the picks stay


def test_a_failed_job_shows_its_one_line_error(home_copy):
    from ui.app import create_app
    from workbench.jobs import job_status, start_job
    store = RunStore(home_copy)
    lm = store.get_run("lm")
    script = "import sys; print('workbench: error: layer 9 is out of range', file=sys.stderr);" \
             " sys.exit(2)"
    job = start_job(["probes", "prior-finetune", lm.id, "--task", "count", "--json"],
                    store=store, command=[sys.executable, "-c", script],
                    env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    wait_until(lambda: job_status(job.id, store=store).done, 60, "the job to end")
    assert [j.id for j in prior_jobs(store, lm.id)] == [job.id]
    app = create_app(home_copy)
    page = sys.modules["ui.prior.run_page"]
    index = sys.modules["ui.prior.index_page"]
    with app.server.test_request_context("/"):
        jobs = str(_find(page.layout(run_id=lm.id), "pr-run-jobs"))
        listed, _runs, disabled = index.refresh(1, None)
    status = job_status(job.id, store=store).status
    for text in (jobs, str(listed)):
        assert f"{status}: workbench: error: layer 9 is out of range" in text
    assert disabled  # nothing left running: the poll stops


def test_form_is_checked_like_the_cli_and_nothing_starts(home_copy):
    from probes.prior_finetune import check_layers, parse_layers, split_values
    from training.corpora.prior_tasks import prior_task
    store = RunStore(home_copy)
    lm = store.get_run("lm")
    before = [r.id for r in store.list_runs()]
    ok = check_form(store, "prior", {"model": "lm", "task": "count", "n": "40"})
    assert ok.ok and ok.argv[:3] == ["probes", "prior", lm.id] and "--json" in ok.argv
    ft = check_form(store, "prior-finetune", {"model": "lm", "task": "count", "layers": "1",
                                              "steps": "3", "held_out": "3,10"})
    assert ft.ok and ft.argv[ft.argv.index("--held-out") + 1] == "3,10"

    def message(fn, *args):
        with pytest.raises(UserError) as exc:
            fn(*args)
        return str(exc.value)
    task = prior_task("count")
    n_layers = json.loads((store.layout(lm.id).model_dir(STEP) / "config.json").read_text())[
        "num_hidden_layers"]
    bad = check_form(store, "prior-finetune", {
        "model": "lm", "task": "count", "layers": str(n_layers), "steps": "0",
        "held_out": "3,99", "name": "tuned", "n": "5"})
    assert bad.errors["layers"] == message(check_layers, [n_layers], n_layers)
    assert bad.errors["held_out"] == message(split_values, task, ["3", "99"])
    assert "steps" in bad.errors["steps"] and "0" in bad.errors["steps"]
    assert "'tuned' already exists" in bad.errors["name"]
    assert "prompts" in bad.errors["n"] and bad.argv is None
    assert "nope" in check_form(store, "prior", {"model": "lm", "task": "nope"}).errors["task"]
    assert "no run 'ghost'" in check_form(store, "prior", {"model": "ghost"}).errors["model"]
    assert "not stored" in check_form(store, "prior", {"model": str(home_copy)}).errors["model"]
    assert "bad name!" in check_form(store, "prior-finetune", {"model": "lm",
                                                               "name": "bad name!"}).errors["name"]
    low = check_form(store, "prior-finetune", {"model": "lm", "trainable": "lowrank",
                                               "rank": "3"})
    assert low.ok and low.argv[low.argv.index("--trainable") + 1] == "lowrank"
    assert low.argv[low.argv.index("--rank") + 1] == "3"
    plain = check_form(store, "prior-finetune", {"model": "lm"})  # the CLI's defaults
    from probes.prior_train import FinetuneConfig
    steps = FinetuneConfig.__dataclass_fields__["steps"].default
    assert plain.argv[plain.argv.index("--steps") + 1] == str(steps)
    assert "--trainable" not in plain.argv and "--rank" not in plain.argv
    assert "at least 1" in check_form(store, "prior-finetune", {
        "model": "lm", "trainable": "lowrank", "rank": "0"}).errors["rank"]
    assert check_form(store, "prior-finetune", {"model": "lm", "layers": "0,x"}).errors[
        "layers"] == message(parse_layers, "0,x")  # read as the CLI reads --layers
    assert "'everything'" in check_form(store, "prior-finetune", {
        "model": "lm", "trainable": "everything"}).errors["trainable"]
    # through the page's callback: one-line errors by field, no job, no run
    from ui.app import create_app
    app = create_app(home_copy)
    index = sys.modules["ui.prior.index_page"]
    with app.server.test_request_context("/"):
        out = index.launch_job(1, "prior-finetune", lm.id, "", "count", "40", "9", "1", "",
                               "")
    assert "out of range" in out[2] and "nothing was started" in out[-2]
    assert all("\n" not in str(part) for part in out[:-1])
    assert prior_jobs(store) == [] and [r.id for r in store.list_runs()] == before


@pytest.mark.browser
def test_launch_an_analysis_and_see_its_figures(dash_duo, home_copy, screenshot, monkeypatch):
    from ui.app import create_app
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(home_copy)
    lm = store.get_run("lm")
    old = store.results(lm.id, "prior")
    repo = str(Path(__file__).resolve().parents[2])  # the job imports this checkout
    dash_duo.start_server(create_app(home_copy, poll_ms=500, job_env={"PYTHONPATH": repo}))
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/prior?model={lm.id}", timeout=20)
    n_box = dash_duo.find_element("#pr-n")
    dash_duo.clear_input(n_box)
    n_box.send_keys("5")
    dash_duo.find_element("#pr-launch").click()
    dash_duo.wait_for_contains_text("#pr-n-err", "at least 10", timeout=20)
    assert prior_jobs(store) == []  # refused before anything started
    dash_duo.clear_input(n_box)
    n_box.send_keys("30")
    dash_duo.find_element("#pr-launch").click()
    dash_duo.wait_for_contains_text("#pr-jobs", "running", timeout=30)
    dash_duo.driver.refresh()  # the page re-attaches to the job from the store
    dash_duo.wait_for_contains_text("#pr-jobs", "completed", timeout=240)
    job = prior_jobs(store)[0]
    assert job.argv[:3] == ["probes", "prior", lm.id] and job.status == "completed"
    key, result = next(iter(store.results(lm.id, "prior").items()))
    assert result["n_examples"] == 30 != old[key]["n_examples"]  # the job's, not the seed's
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/runs/{lm.id}/prior", timeout=20)
    drawn = wait_until(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#pr-bins .js-plotly-plot');"
        "const s = document.querySelector('#pr-scatter .js-plotly-plot');"
        "return g && s && g.data && s.data ? [g.data[0].y, s.data.map(t => t.x.length)]"
        " : null;"), 30, "the prior figures")
    order = [b for b in ("common", "medium", "rare") if b in result["accuracy_by_bin"]]
    assert drawn[0] == [result["accuracy_by_bin"][b]["accuracy"] for b in order]
    assert sum(drawn[1]) == len(result["values"])
    assert "localised blocks" in dash_duo.find_element("#pr-summary").text
    assert "held-out accuracy" in dash_duo.find_element("#pr-ft-table").text
    screenshot(dash_duo, "prior-run")
    tuned = store.get_run("tuned")  # the finetune run's page: its comparison, its parent
    ft = store.get_result(tuned.id, "prior_finetune", "task=count")
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/runs/{tuned.id}/prior", timeout=20)
    dash_duo.wait_for_contains_text("#pr-parent", "lm", timeout=20)
    held = wait_until(lambda: dash_duo.driver.execute_script(
        "const g = document.querySelector('#pr-ft .js-plotly-plot');"
        "return g && g.data ? g.data[0].y : null;"), 30, "the finetune comparison")
    assert held == [ft[k]["held_out_accuracy"] for k in COMPARISON]
