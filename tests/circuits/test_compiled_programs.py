"""A trained Transformer Program compiled into a model run (``workbench programs compile``) and
searched with the circuits CLI: the run loads as a model, pairs come from the program's inputs,
and discovery reports precision/recall against the program's known circuit."""

from __future__ import annotations

import json

import pytest
import torch

from workbench.cli import main

pytestmark = pytest.mark.integration

TRAIN = ["programs", "train", "reverse", "--preset", "tiny", "--set", "epochs=40",
         "--set", "n_num_heads=0", "--set", "n_num_mlps=0", "--set", "task.max_len=5",
         "--set", "task.vocab_size=3", "--set", "task.n_samples=300", "--json"]


def cli(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def compiled(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    code, out, err = cli(capsys, TRAIN)
    assert code == 0, err
    program_run = json.loads(out)["run_id"]
    code, out, err = cli(capsys, ["programs", "compile", program_run, "--name", "rev-compiled",
                                  "--json"])
    assert code == 0, err
    return program_run, json.loads(out)


def test_compiled_run_is_a_model_that_equals_the_program(compiled):
    from circuits.datasets import _stored_examples
    from circuits.target import load_target
    from programs.api import load_run as load_program
    from programs.discrete import run_discrete

    program_run, summary = compiled
    target = load_target("rev-compiled")
    run = target.run
    assert run.run.kind == "compiled" and run.status == "completed"
    x, y, vocab = _stored_examples(target)
    assert vocab.input_vocab == list(load_program(program_run).program.shape.input_vocab)
    with torch.no_grad():
        logits = run.model()(x, return_type="logits")  # [N, pos, d_out]
    expected = run_discrete(load_program(program_run).program, x).predictions
    assert torch.equal(logits.argmax(-1), expected)
    labelled = y != -100
    assert torch.equal(y[labelled], expected[labelled]) and labelled[:, 1:].any()
    assert summary["ground_truth_edges"] > 0


def test_discovery_scores_against_the_ground_truth(compiled, capsys):
    _, summary = compiled
    base = ["circuits", "discover", "--model", "rev-compiled", "--task", "resample",
            "--method", "eap", "--json", "--examples", "64"]
    code, out, err = cli(capsys, base + ["--target-sparsity", "0"])
    assert code == 0, err
    full = json.loads(out)
    truth = full["ground_truth"]
    assert truth["n_true"] == summary["ground_truth_edges"]
    assert truth["recall"] == 1.0  # the whole graph holds every true edge ...
    assert truth["precision"] == truth["n_true"] / full["n_edges"]  # ... and every other edge
    code, out, err = cli(capsys, base + ["--target-sparsity", "0.9"])
    assert code == 0, err
    sparse = json.loads(out)["ground_truth"]
    assert sparse["n_found"] < full["n_edges"] and set(sparse) >= {"precision", "recall"}


def test_numerical_program_compiles_and_loads_as_its_program(tmp_path, monkeypatch, capsys):
    """A program with counting heads and numerical MLPs (the paper presets' kind) compiles to
    a run whose model reproduces the program; compiling something else is refused cleanly."""
    from circuits.target import load_target
    from programs.api import load_run as load_program
    from programs.discrete import run_discrete

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    argv = [a for a in TRAIN if a not in ("n_num_heads=0", "n_num_mlps=0")]
    argv = [a for i, a in enumerate(argv) if not (a == "--set" and argv[i + 1] == "--set")]
    code, out, err = cli(capsys, argv)
    assert code == 0, err
    program_run = json.loads(out)["run_id"]
    program = load_program(program_run)
    assert program.program.num_heads and any(m.numerical for m in program.program.mlps)
    code, out, err = cli(capsys, ["programs", "compile", program_run, "--name", "num", "--json"])
    assert code == 0, err
    model = load_target("num").run.model()
    x = torch.cat([program.x_train, program.x_test])
    with torch.no_grad():
        logits = model(x, return_type="logits")
    assert torch.equal(logits.argmax(-1), run_discrete(program.program, x).predictions)
    n_true = json.loads(out)["ground_truth_edges"]
    code, out, err = cli(capsys, ["circuits", "discover", "--model", "num", "--task", "resample",
                                  "--method", "eap", "--json", "--examples", "64",
                                  "--target-sparsity", "0"])
    assert code == 0, err
    truth = json.loads(out)["ground_truth"]  # every true edge (counting parts too) is a graph edge
    assert truth["n_true"] == n_true and truth["recall"] == 1.0
    from workbench.store import RunStore
    before = len(RunStore().list_runs())
    code, out, err = cli(capsys, ["programs", "compile", "num"])  # not a program run
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a Transformer Program" in err
    assert len(RunStore().list_runs()) == before


def test_ground_truth_example_runs(tmp_path, monkeypatch, capsys):
    import runpy
    from pathlib import Path

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    example = Path(__file__).resolve().parents[2] / "examples" / "program_ground_truth.py"
    out = runpy.run_path(str(example))["main"](["--epochs", "30", "--steps", "60"])
    truth = out["found"]["ground_truth"]
    assert 0.0 <= truth["precision"] <= 1.0 and 0.0 <= truth["recall"] <= 1.0
    assert truth["n_true"] == out["compiled"]["ground_truth_edges"]
    assert "precision" in capsys.readouterr().out
