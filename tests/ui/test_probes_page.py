"""Probes views: the figure factories read what the store holds (probe fits put there by the
real fit API and ``probes.cli.store_result``, knowledge results built from the real result
dataclasses and stored as ``run_knowledge`` stores them), the run page and its callbacks, the
knowledge form checked like the CLI (nothing started on error), and in headless Chromium the
pages over those results plus a refused launch."""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

import pytest

from probes.cli import store_result
from probes.fit import fit_probes
from probes.knowledge import KnowledgeConfig, KnowledgeResult
from probes.knowledge_data import ANCHORS
from probes.knowledge_probe import ProbeTable
from tests.probes.helpers import planted
from training.corpora.bios_templates import ATTRIBUTES
from ui.app import create_app
from ui.figures import has_empty_state
from ui.probes.figures import BASELINE_TRACES, baseline_lines, group_fits, heatmap_panels, \
    probe_heatmaps, probe_series
from ui.probes.knowledge_figures import p_probe_curves, q_over_training, q_vs_qa_points, \
    qa_table
from ui.probes.data import all_knowledge, fit_results, probe_runs
from ui.probes.launch import check_form, config_of_argv, job_argv
from browser_helpers import find_component as _find


def store_fit(run_id, *, step=None, acts="/acts/one", signal=3.0, seed=0, control=True,
              baseline=True):
    """Fit probes on planted activations of ``run_id`` (at ``step``) and store the payload the
    way ``workbench probes fit`` does; returns the stored key."""
    acts_mem = planted(n=240, signal=signal, seed=seed)
    acts_mem.manifest["model"] = {"name": "m", "run_id": run_id, "step": step,
                                  "config_hash": "x"}
    payload = fit_probes(acts_mem, "label", control=control, seed=seed).to_json()
    if baseline:  # the random-init model's fit: no planted signal
        noise = planted(n=240, signal=0.0, seed=seed + 1)
        base = fit_probes(noise, "label", seed=seed)
        payload["random_baseline"] = {"test_score": base.test_score, "best": base.best}
    payload["acts"] = acts
    return store_result(payload, [f"step={step}", f"acts={acts}", "target=label",
                                  "kind=logistic", "split_by=None", f"control={control}"])


def knowledge_result(run_id, *, augmentation, protocol, seed, over_training=True):
    """A knowledge result from the real dataclasses (accuracies drawn at random)."""
    rnd = random.Random(seed)
    cfg = KnowledgeConfig(people=40, augmentation=augmentation, protocol=protocol, steps=60)

    def table(anchors, rank):
        return ProbeTable(anchors=anchors, attributes=ATTRIBUTES,
                          accuracy=[[rnd.random() for _ in ATTRIBUTES] for _ in anchors],
                          train_accuracy=[[rnd.random() for _ in ATTRIBUTES] for _ in anchors],
                          chance=[0.1] * len(ATTRIBUTES), n_train=20, n_test=20, rank=rank)

    def per_attribute():
        values = {a: rnd.random() for a in ATTRIBUTES}
        return {**values, "all": sum(values.values()) / len(values)}

    def over_steps():
        return {"steps": [10, 30, 60], "attributes": list(ATTRIBUTES),
                "accuracy": [[rnd.random() for _ in ATTRIBUTES] for _ in range(3)]}

    qa = per_attribute()
    fields = dict(
        run_id=run_id, config=dataclasses.asdict(cfg), qa_accuracy=qa,
        qa_train_accuracy=per_attribute(),
        qa_before_finetune=None if protocol == "mixed" else per_attribute(),
        memorisation=per_attribute(), p_probe=table(ANCHORS, 2).to_json(),
        q_probe=table(("name",), 16).to_json(),
        pretrain={"steps": 60, "tokens": 1, "train_loss": 1.0, "val_loss": 1.0,
                  "wall_seconds": 1.0}, seconds={"prepare": 0.1})
    if over_training:
        fields.update(q_probe_over_training=over_steps(),
                      p_probe_name_over_training=over_steps())
    # the fields this version of the result holds (others travel in the JSON, as stored)
    known = KnowledgeResult.__dataclass_fields__
    result = KnowledgeResult(**{k: v for k, v in fields.items() if k in known}).to_json()
    result.update({k: v for k, v in fields.items() if k not in known})
    return f"config={cfg.key()}", result


@pytest.fixture
def results(store, seed):
    """A trained run with one fit, a 3-checkpoint series and a prior result; two pretrain runs
    with knowledge results (one without the Q-probe over training)."""
    run = seed(store, name="tiny")
    single = store_fit(run.id)
    for i, step in enumerate((50, 100, 150)):
        store_fit(run.id, step=step, acts=f"/acts/series/step_{step:08d}", signal=1.0 + i,
                  seed=i, control=False, baseline=False)
    store.put_result(run.id, "probes", "prior task=count", {"not": "a fit"})
    lms = []
    # the newest first in the store, the last in the table's order
    for name, aug, protocol, over in (("lm-multi", "multi5+permute+fullname", "mixed", True),
                                      ("lm-single", "single", "pretrain-finetune", False)):
        lm = store.create_run(kind="pretrain", task="lm", config={"data": name}, name=name)
        store.set_status(lm.id, "completed")
        key, payload = knowledge_result(lm.id, augmentation=aug, protocol=protocol,
                                        seed=len(lms), over_training=over)
        store.put_result(lm.id, "knowledge", key, payload)
        lms.append(lm)
    return {"run": run, "single": single, "lms": lms}


def test_fit_figures_draw_the_stored_grids(store, results):
    run = results["run"]
    stored = fit_results(store, run.id)
    assert len(stored) == 4 and not any(k.startswith("prior") for k in stored)
    groups = group_fits(stored)
    series = next(g for g in groups if g.is_series)
    one = next(g for g in groups if not g.is_series)
    assert series.steps == [50, 100, 150] and one.keys == (results["single"],)
    payload = store.get_result(run.id, "probes", results["single"])
    fig = probe_heatmaps(one.latest)
    assert [t.name for t in fig.data] == ["held-out accuracy", "control task",
                                          "selectivity (task - control)", "random-init model"]
    assert [list(map(list, t.z)) for t in fig.data] == [
        payload["test_score"], payload["control_score"], payload["selectivity"],
        payload["random_baseline"]["test_score"]]
    assert list(fig.data[0].y) == payload["sites"] and list(fig.data[0].x) == payload["positions"]
    lines = baseline_lines(payload)
    assert [t.name for t in lines.data] == list(BASELINE_TRACES)
    assert list(lines.data[0].y) == [max(c) for c in zip(*payload["test_score"])]
    assert list(lines.data[1].y) == payload["embedding_baseline"]
    assert list(lines.data[3].y) == [payload["chance"]] * len(payload["positions"])
    curve = probe_series(series)
    per_step = [store.get_result(run.id, "probes", k)["best"]["test_score"] for k in series.keys]
    assert list(curve.data[0].x) == [50, 100, 150] and list(curve.data[0].y) == per_step
    assert has_empty_state(probe_series(one, empty="needs --checkpoint all"))
    assert has_empty_state(probe_heatmaps(empty="no fit"))


def test_knowledge_figures_draw_the_stored_results(store, results):
    entries = all_knowledge(store)
    assert [e.run.name for e in entries] == ["lm-single", "lm-multi"]  # newest run first
    multi = next(e for e in entries if e.run.name == "lm-multi").payload
    fig = p_probe_curves(multi)
    p = multi["p_probe"]
    assert [t.name for t in fig.data] == p["attributes"]
    assert list(fig.data[2].y) == [row[2] for row in p["accuracy"]]
    assert list(fig.data[2].x) == p["anchors"]
    columns, rows = qa_table(entries)
    assert [r["augmentation"] for r in rows] == ["multi5+permute+fullname", "single"]
    for e in entries:
        row = next(r for r in rows if r["run_id"] == e.run.id)
        assert all(row[a] == e.payload["qa_accuracy"][a] for a in (*ATTRIBUTES, "all"))
        assert row["Q-probe mean"] == pytest.approx(sum(e.payload["q_probe"]["accuracy"][0]) / 6)
        assert row["bio memorised"] == e.payload["memorisation"]["all"]
    points = q_vs_qa_points(entries)
    assert len(points) == 2 * len(ATTRIBUTES)
    point = next(pt for pt in points if pt["run_id"] == entries[0].run.id
                 and pt["attribute"] == "major")
    assert point["q_probe"] == entries[0].payload["q_probe"]["accuracy"][0][3]
    assert point["qa"] == entries[0].payload["qa_accuracy"]["major"]
    over = q_over_training(multi)
    assert list(over.data[0].x) == multi["q_probe_over_training"]["steps"]
    assert list(over.data[1].y) == [r[1] for r in multi["q_probe_over_training"]["accuracy"]]
    p_name = multi["p_probe_name_over_training"]
    assert len(over.data) == 2 * len(ATTRIBUTES) and over.data[7].name.startswith("birth_city")
    assert list(over.data[7].y) == [r[1] for r in p_name["accuracy"]]
    single = next(e for e in entries if e.run.name == "lm-single").payload
    assert has_empty_state(q_over_training(single, empty="workbench probes knowledge run"))


def _note(fig) -> str:
    """The empty-state message of ``fig``, its line breaks read as spaces."""
    return fig.layout.annotations[-1].text.replace("<br>", " ")


def test_run_page_layout_callbacks_and_analysis_link(store, results, seed):
    bare = seed(store, name="bare")
    app = create_app(store.home)
    page = sys.modules["ui.probes.run_page"]
    runs_page = sys.modules["ui.runs.run_page"]
    run, lm = results["run"], results["lms"][0]
    with app.server.test_request_context("/"):
        assert ("Probes", f"/runs/{run.id}/probes") in runs_page.analyses_for(run)
        assert ("Probes", f"/runs/{lm.id}/probes") in runs_page.analyses_for(lm)
        assert not any(href.endswith("/probes") for _, href in runs_page.analyses_for(bare))
        body = page.layout(run_id=run.id)
        pick = _find(body, "pb-fit-pick")
        assert len(pick.options) == 2
        heat = _find(body, "pb-heatmap").figure
        first = group_fits(fit_results(store, run.id))[0]
        assert list(map(list, heat.data[0].z)) == first.latest["test_score"]
        series = next(g for g in group_fits(fit_results(store, run.id)) if g.is_series)
        heat2, _, curve, summary = page.show_fit(series.keys[0], run.id)
        assert list(curve.data[0].x) == [50, 100, 150] and summary.startswith("step 150")
        assert list(map(list, heat2.data[0].z)) == series.latest["test_score"]
        # no knowledge on the trained run: the P-probe figure names the command
        assert has_empty_state(_find(body, "pb-pprobe").figure)
        assert "probes knowledge run" in _note(_find(body, "pb-pprobe").figure)
        kbody = page.layout(run_id=lm.id)
        key = _find(kbody, "pb-k-pick").value
        p_curves = _find(kbody, "pb-pprobe").figure
        stored = store.get_result(lm.id, "knowledge", key)
        assert list(p_curves.data[0].y) == [r[0] for r in stored["p_probe"]["accuracy"]]
        assert len(_find(kbody, "pb-qa-table").children[1].children) == 2  # both results
        assert len(_find(kbody, "pb-qscatter").figure.data) == 2
        assert has_empty_state(_find(kbody, "pb-heatmap").figure)  # no fit on this run
        blank = page.layout(run_id=bare.id)
        assert "probes fit" in _note(_find(blank, "pb-heatmap").figure)
        assert "Run not found" in str(page.layout(run_id="r-nope"))


FORM = {"people": "40", "augmentation": "multi2+permute", "protocol": "mixed", "steps": "60",
        "finetune_steps": "10", "probe_steps": "10", "qa_fraction": "0.8", "vocab_size": "512",
        "batch_size": "8", "lr": "0.003", "seed": "1", "model": '{"d_model": 64}'}


@pytest.mark.parametrize("field, value, expected", [
    ("people", "many", "--people must be an integer, got 'many'"),
    ("people", "3", "--people must be an integer of at least 8, got 3"),
    ("augmentation", "multi5+bogus", "unknown augmentation 'bogus'"),
    ("protocol", "later", "--protocol must be one of pretrain-finetune, mixed"),
    ("finetune_steps", "0", "--finetune-steps must be a positive integer, got 0"),
    ("qa_fraction", "1.5", "--qa-fraction must be strictly between 0 and 1"),
    ("model", "{oops", "--model is not JSON"),
    ("model", '{"nope": 1}', "unknown config key 'nope'"),
    ("model", '{"d_model": "wide"}', "d_model must be an integer, got 'wide'"),
    ("pool_size", "1", "--pool-size must be 0 (the whole pools) or at least 2, got 1"),
    ("pool_size", "few", "--pool-size must be an integer, got 'few'"),
])
def test_form_checked_like_the_cli(store, field, value, expected):
    check = check_form({**FORM, field: value}, None, store)
    assert not check.ok and expected in check.errors[field], check.errors
    assert "\n" not in check.errors[field]


def test_valid_form_round_trips_through_the_job_argv(store, seed):
    check = check_form(FORM, "my-lm", store)
    assert check.ok, check.errors
    assert check.config == KnowledgeConfig(people=40, augmentation="multi2+permute",
                                           protocol="mixed", steps=60, finetune_steps=10,
                                           probe_steps=10, vocab_size=512, batch_size=8,
                                           lr=0.003, seed=1,
                                           model={**KnowledgeConfig().model, "d_model": 64})
    argv = job_argv(check.config, check.name)
    assert argv[:3] == ["probes", "knowledge", "run"] and argv[-3:] == ["--name", "my-lm",
                                                                       "--json"]
    assert config_of_argv(argv) == check.config
    # a blank pool size follows the people (the CLI's default); the job runs the value it got
    assert check.config.pool_size == 2 and "--pool-size" in argv
    sized = check_form({**FORM, "people": "300", "pool_size": "0"}, None, store).config
    assert sized.pool_size == 0
    assert check_form({**FORM, "people": "300"}, None, store).config.pool_size == 12
    seed(store, name="taken")
    assert "already exists" in check_form(FORM, "taken", store).errors["name"]
    assert "invalid run name" in check_form(FORM, "bad name!", store).errors["name"]


def test_launch_callback_refuses_bad_values_and_starts_nothing(store):
    from ui.probes.parts import FORM_KEYS
    from workbench.jobs import list_jobs

    app = create_app(store.home)
    page = sys.modules["ui.probes.index_page"]
    from ui.probes.parts import _value
    form = {**{k: _value(k) for k in FORM_KEYS}, **FORM, "steps": "-5", "name": ""}
    values = [form[k] for k in FORM_KEYS]
    with app.server.test_request_context("/"):
        out = page.launch(1, *values)
        errors = dict(zip(FORM_KEYS, out))
        assert "--steps must be a positive integer, got -5" in errors["steps"]
        assert out[len(FORM_KEYS)] == "fix the highlighted values; nothing was started"
        assert "no knowledge jobs yet" in str(page.layout())
    assert list_jobs(store=store) == [] and store.list_runs() == []


def test_index_lists_the_runs_with_results(store, results):
    app = create_app(store.home)
    page = sys.modules["ui.probes.index_page"]
    with app.server.test_request_context("/"):
        body = page.layout()
    listing = str(_find(body, "pb-runs-list"))
    for run in (results["run"], *results["lms"]):
        assert f"/runs/{run.id}/probes" in listing
    assert len(_find(body, "pb-qa-table").children[1].children) == 2


def _set(dash_duo, selector, value):
    elem = dash_duo.find_element(selector)
    dash_duo.clear_input(elem)
    elem.send_keys(value)


def _traces(dash_duo, graph_id):
    """Trace names of the plotly graph in ``graph_id`` (None until it is drawn)."""
    return dash_duo.driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g.data ? g.data.map(t => t.name) : null;")


@pytest.mark.browser
def test_pages_over_stored_results_and_a_refused_launch(dash_duo, store, results, screenshot):
    from browser_helpers import wait_until
    from workbench.jobs import list_jobs

    run, lm = results["run"], results["lms"][0]
    dash_duo.start_server(create_app(store.home, poll_ms=500))
    dash_duo.wait_for_page(url=dash_duo.server_url + "/probes", timeout=20)
    dash_duo.wait_for_contains_text("#pb-runs-list", "lm-multi", timeout=20)
    assert "tiny" in dash_duo.find_element("#pb-runs-list").text
    assert len(dash_duo.find_elements("#pb-qa-table tbody tr")) == 2
    _set(dash_duo, "#pb-people", "3")
    dash_duo.find_element("#pb-launch").click()
    dash_duo.wait_for_contains_text("#pb-people-err", "at least 8", timeout=20)
    assert "nothing was started" in dash_duo.find_element("#pb-form-error").text
    assert list_jobs(store=store) == []
    screenshot(dash_duo, "probes-index")

    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/runs/{run.id}", timeout=20)
    dash_duo.wait_for_contains_text("body", "Probes", timeout=20)  # the analysis link
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/runs/{run.id}/probes", timeout=20)
    names = wait_until(lambda: _traces(dash_duo, "pb-heatmap"), 30, "the heatmaps")
    assert names == [t for t, _ in heatmap_panels(
        store.get_result(run.id, "probes", results["single"]))]
    z = dash_duo.driver.execute_script(
        "return document.querySelector('#pb-heatmap .js-plotly-plot').data[0].z;")
    assert z == store.get_result(run.id, "probes", results["single"])["test_score"]
    assert wait_until(lambda: _traces(dash_duo, "pb-baselines"), 20, "baselines") == list(
        BASELINE_TRACES)
    screenshot(dash_duo, "probes-run")

    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/runs/{lm.id}/probes", timeout=20)
    curves = wait_until(lambda: _traces(dash_duo, "pb-pprobe"), 30, "the P-probe curves")
    assert curves == list(ATTRIBUTES)
    assert len(wait_until(lambda: _traces(dash_duo, "pb-qtrain"), 20, "Q over training")) \
        == 2 * len(ATTRIBUTES)
    assert len(wait_until(lambda: _traces(dash_duo, "pb-qscatter"), 20, "the scatter")) == 2
    assert len(dash_duo.find_elements("#pb-qa-table tbody tr")) == 2
    dash_duo.driver.execute_script("document.getElementById('pb-pprobe').scrollIntoView()")
    screenshot(dash_duo, "probes-knowledge")


@pytest.mark.browser
@pytest.mark.integration
def test_launch_a_tiny_knowledge_job_and_follow_it(dash_duo, store, screenshot):
    from browser_helpers import wait_until
    from ui.probes.launch import FIELDS

    # the job runs this checkout, however the package happens to be installed
    repo = str(Path(__file__).resolve().parents[2])
    dash_duo.start_server(create_app(store.home, poll_ms=500, job_env={"PYTHONPATH": repo}))
    dash_duo.wait_for_page(url=dash_duo.server_url + "/probes", timeout=20)
    tiny = {"people": "16", "steps": "4", "finetune_steps": "2", "probe_steps": "2",
            "vocab_size": "1024", "batch_size": "4", "series_checkpoints": "2"}
    for key, value in tiny.items():
        if key in FIELDS:
            _set(dash_duo, f"#pb-{key}", value)
    dash_duo.find_element("#pb-launch").click()
    dash_duo.wait_for_contains_text("#pb-form-error", "started job", timeout=20)
    dash_duo.driver.refresh()  # the page re-attaches to the job from the store
    dash_duo.wait_for_contains_text("#pb-jobs", "16 people", timeout=30)
    text = wait_until(lambda: next((t for t in [dash_duo.find_element("#pb-jobs").text]
                                    if any(w in t for w in ("result stored on", "failed",
                                                            "interrupted"))), None),
                      240, "the job's end")
    assert "result stored on" in text, text
    [(lm, fits, knowledge)] = probe_runs(store)
    assert lm.kind == "pretrain" and (fits, knowledge) == (0, 1)
    dash_duo.wait_for_contains_text("#pb-runs-list", lm.name or lm.id, timeout=20)
    dash_duo.find_element("#pb-job-list a").click()
    curves = wait_until(lambda: _traces(dash_duo, "pb-pprobe"), 30, "the P-probe curves")
    stored = next(iter(store.results(lm.id, "knowledge").values()))
    assert curves == stored["p_probe"]["attributes"]
    assert len(dash_duo.find_elements("#pb-qa-table tbody tr")) == 1
    screenshot(dash_duo, "probes-launched")


def test_the_forms_defaults_are_the_clis(store):
    from ui.probes.parts import FORM_KEYS

    app = create_app(store.home)
    with app.server.test_request_context("/"):
        body = sys.modules["ui.probes.index_page"].layout()
    values = {k: _find(body, f"pb-{k}").value for k in FORM_KEYS}
    check = check_form(values, values.pop("name"), store)
    assert check.ok, check.errors
    assert check.config == KnowledgeConfig()  # untouched, the form runs the CLI's defaults
    assert config_of_argv(job_argv(check.config)) == KnowledgeConfig()
