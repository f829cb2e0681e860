"""End-to-end training, the CLI (train / export / verify) and bad user input."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from programs.cli import register
from programs.config import TINY, ProgramConfig
from programs.data import encode, shape_for
from programs.train import train_program
from programs.verify import verify
from programs_helpers import fixed_reverse
from training.tasks import Example, TaskData
from workbench.errors import UserError


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="workbench")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.mark.integration
def test_tiny_reverse_trains_to_99_percent_and_program_agrees():
    data = fixed_reverse()
    result = train_program(data, TINY.with_overrides({"epochs": 300}))
    assert result.test_acc >= 0.99, result.test_acc
    x = encode(data.test, result.program.shape)[0]
    assert verify(result.program, x).agreement == 1.0


@pytest.mark.integration
def test_cli_train_export_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    data = tmp_path / "rev.jsonl"
    task = fixed_reverse(length=3, vocab="abc")
    with data.open("w") as fh:
        for ex in (*task.train, *task.test):
            fh.write(json.dumps({"input": list(ex.input), "output": list(ex.output)}) + "\n")
    assert run_cli(["programs", "train", "rev", "--data", str(data), "--preset", "tiny",
                    "--set", "epochs=5", "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) >= {"run_id", "test_acc", "train_acc", "wall_seconds", "program_lines"}
    prog = tmp_path / "prog.py"
    assert run_cli(["programs", "export", summary["run_id"], "-o", str(prog)]) == 0
    capsys.readouterr()
    assert run_cli(["programs", "verify", summary["run_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"] == 1.0
    # the exported file runs on its own, in a fresh interpreter, with the standard library only
    code = f"import runpy; ns = runpy.run_path({str(prog)!r}); print(ns['run'](['BOS','a','b','c']))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert len(eval(out)) == 4


@pytest.mark.integration
def test_summing_heads_train_save_and_verify(tmp_path, monkeypatch, capsys):
    """``num_head_values``: the heads' value reads travel with the checkpoint; the stored run
    reloads into the same program (verify = 1.0)."""
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    assert run_cli(["programs", "train", "hist", "--preset", "tiny", "--set", "epochs=3",
                    "--set", "num_head_values=true", "--set", "task.n_samples=300",
                    "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    from programs.api import load_run

    loaded = load_run(run_id)
    assert loaded.model.cfg.num_head_values
    assert all(lyr.num_value_read is not None for lyr in loaded.model.layers)
    assert run_cli(["programs", "verify", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"] == 1.0


def test_non_functional_task_is_rejected():
    ex = [Example(input=("BOS", "a"), output=(None, "x")),
          Example(input=("BOS", "a"), output=(None, "y"))]
    data = TaskData(name="bad", train=tuple(ex), test=(), input_vocab=("BOS", "a", "PAD"),
                    output_vocab=("x", "y"), layout="aligned", pad_token="PAD")
    with pytest.raises(UserError, match="not a function"):
        train_program(data, TINY)


def test_empty_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UserError, match="empty"):
        run_cli(["programs", "train", "x", "--data", str(empty), "--preset", "tiny"])


def test_vocabulary_too_large_for_width():
    data = fixed_reverse(length=3, vocab="abcdef")
    with pytest.raises(UserError, match="var_width"):
        shape_for(data, var_width=4)
    with pytest.raises(UserError, match="var_width"):
        train_program(data, TINY.with_overrides({"var_width": "4"}))


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="nope"):
        TINY.with_overrides({"nope": 1})
    with pytest.raises(UserError, match="n_layers"):
        ProgramConfig(n_layers=0)
    with pytest.raises(UserError):
        run_cli(["programs", "train", "reverse", "--set", "epochs"])
    with pytest.raises(UserError, match="'cubic'"):
        TINY.with_overrides({"num_mlp_features": "cubic"})


@pytest.mark.integration
def test_cli_trains_a_prepared_run_from_its_stored_config(tmp_path, monkeypatch, capsys):
    from programs.api import prepare_run
    from workbench.store import RunStore

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    store = RunStore()
    run_id = prepare_run("reverse", name="pre", store=store, preset_name="tiny",
                         overrides={"epochs": "2"},
                         task_params={"max_len": "3", "n_samples": "60"})
    prepared = store.get_run(run_id)
    assert prepared.status == "created" and prepared.config["task_params"]["max_len"] == 3
    assert run_cli(["programs", "train", "--run-id", run_id, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    after = store.get_run(run_id)
    assert summary["run_id"] == run_id and after.status == "completed"
    assert after.config == prepared.config and len(store.list_runs()) == 1
    with pytest.raises(UserError, match="completed"):  # a finished run is kept
        run_cli(["programs", "train", "--run-id", run_id])
    with pytest.raises(UserError, match="stored config"):  # the request is not restated
        run_cli(["programs", "train", "reverse", "--run-id", run_id])
    assert store.get_run(run_id).status == "completed" and len(store.list_runs()) == 1


def test_mask_padding_setting_decides_the_shape_pad():
    data = fixed_reverse(length=3, vocab="abc")
    assert shape_for(data, None).pad == "PAD"
    assert shape_for(data, None, mask_padding=False).pad is None
    from programs.config import preset
    assert preset("paper", "hist").mask_padding is True


def test_paper_preset_brings_the_paper_task_setup():
    from programs.config import preset_task_params
    assert preset_task_params("paper", "reverse") == {"vocab_size": 5, "eos": True,
                                                      "sampling": "paper"}
    assert preset_task_params("paper", "reverse", {"vocab_size": "4"}) == {
        "vocab_size": "4", "eos": True, "sampling": "paper"}  # explicit settings win
    assert preset_task_params("tiny", "reverse") == {}
    assert preset_task_params("paper", "custom-thing") == {}
