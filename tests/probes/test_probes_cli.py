"""`workbench probes collect|fit` end to end on a tiny trained run, and bad input: one line,
exit 2, nothing written."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_run(home):
    import workbench
    return workbench.train("modular-addition", preset="tiny").run_id


def test_collect_fit_baseline_causal_and_store(tiny_run, run_cli, store, tmp_path):
    acts = tmp_path / "acts"
    proc = run_cli("probes", "collect", "--model", tiny_run, "--data", "all", "--positions",
                   "0,1,2", "--hooks", "resid,mlp", "-o", acts, "--json", check=True)
    out = json.loads(proc.stdout)
    assert out["n_examples"] == 13 * 13 and out["sites"] == ["resid.0", "mlp.1", "resid.1"]
    assert out["model"]["run_id"] == tiny_run and out["model"]["step"] == 150
    proc = run_cli("probes", "fit", acts, "--target", "output", "--control", "--baseline",
                   "random", "--causal", "ablate", "--json", check=True)
    fit = json.loads(proc.stdout)
    grid = dict(zip(fit["sites"], fit["test_score"]))
    # the answer is readable where the model computes it, not from the embeddings alone
    assert grid["resid.1"][2] > fit["chance"] + 0.3 and grid["resid.0"][2] < 0.3
    assert fit["random_baseline"]["best"]["test_score"] < grid["resid.1"][2] - 0.2
    assert fit["causal"]["answer_changed"] > fit["causal"]["random_answer_changed"]
    assert fit["causal"]["accuracy_after"] < fit["causal"]["accuracy_before"]
    stored = store.results(tiny_run, "probes")
    assert fit["stored_as"] in stored and stored[fit["stored_as"]]["test_score"] == \
        fit["test_score"]
    # the first input is read straight off the embeddings at its position
    proc = run_cli("probes", "fit", acts, "--target", "input_0", "--kind", "linear", "--json",
                   "--no-store", check=True)
    assert json.loads(proc.stdout)["test_score"][0][0] == 1.0
    text = run_cli("probes", "fit", acts, "--target", "output", "--no-store", check=True).stdout
    assert "best: resid.1" in text and "[test]" in text


def test_checkpoint_series(tiny_run, run_cli, tmp_path):
    out = tmp_path / "series"
    proc = run_cli("probes", "collect", "--model", tiny_run, "--checkpoint", "all", "--data",
                   "all", "--positions", "2", "--layers", "last", "-o", out, "--json",
                   check=True)
    assert [c["step"] for c in json.loads(proc.stdout)["checkpoints"]] == [50, 100, 150]
    proc = run_cli("probes", "fit", out, "--target", "output", "--json", check=True)
    series = json.loads(proc.stdout)
    assert series["steps"] == [50, 100, 150] and len(series["best_by_step"]) == 3


def test_bad_input_one_line_exit_2_nothing_written(tiny_run, run_cli, store, tmp_path):
    acts = tmp_path / "acts"
    run_cli("probes", "collect", "--model", tiny_run, "--data", "all", "--positions", "0,2",
            "-o", acts, check=True)
    before = sorted(p.name for p in acts.iterdir())
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    constant = tmp_path / "constant.txt"
    constant.write_text("x\n" * 169)
    rare = tmp_path / "rare.txt"
    rare.write_text("rare\n" + "".join(f"c{i % 2}\n" for i in range(168)))
    other = __import__("workbench").train("modular-addition", preset="tiny",
                                          overrides={"train.seed": 1}).run_id
    cases = [
        (["probes", "collect", "--model", tiny_run, "--data", "all", "--layers", "4", "-o",
          tmp_path / "n1"], "layer 4 does not exist"),
        (["probes", "collect", "--model", tiny_run, "--data", "all", "--hooks",
          "blocks.3.hook_resid_post", "-o", tmp_path / "n2"], "no hook"),
        (["probes", "collect", "--model", tiny_run, "--data", "all", "--positions", "3", "-o",
          tmp_path / "n3"], "outside the sequence"),
        (["probes", "collect", "--model", other, "--data", "all", "--positions", "0,2", "-o",
          acts], "another model"),
        (["probes", "fit", acts, "--target", labels], "2 labels but the activations hold 169"),
        (["probes", "fit", acts, "--target", constant], "constant"),
        (["probes", "fit", acts, "--target", rare], "no test example"),
        (["probes", "fit", acts, "--target", "output", "--model", other], "activations of model"),
        (["probes", "fit", acts, "--target", "output", "--kind", "svm"], "unknown probe kind"),
    ]
    for args, message in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    assert not any((tmp_path / f"n{i}").exists() for i in (1, 2, 3))
    assert sorted(p.name for p in acts.iterdir()) == before
    assert store.results(tiny_run, "probes") == {}
