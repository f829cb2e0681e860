import argparse
import json

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.cli import modular_train_mask, parse_checkpoint, register


def test_train_mask_matches_the_task_split():
    from training.tasks.modular import ModularAddition

    p = 13
    data = ModularAddition(p=p, frac_train=0.3, seed=5).generate()
    mask = modular_train_mask(p, 0.3, 5)
    train = {(int(e.input[0]), int(e.input[1])) for e in data.train}
    assert int(mask.sum()) == len(train)
    assert {(a, b) for a in range(p) for b in range(p) if mask[a, b]} == train


def test_parse_checkpoint():
    assert parse_checkpoint("all") == "all" and parse_checkpoint("120") == 120
    with pytest.raises(UserError):
        parse_checkpoint("last")


@pytest.fixture
def stored_run(tmp_path, monkeypatch, constructed_model):
    from workbench.checkpoint import save_checkpoint
    from workbench.store import RunStore

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    store = RunStore()
    p = 17
    config = {"task": "modular-addition", "task_params": {"p": p, "frac_train": 0.3, "seed": 0},
              "model": {"n_heads": 2, "act_fn": "relu"}, "train": {}}
    run = store.create_run(kind="train", task="modular-addition", config=config, name="grok")
    final = constructed_model(p, [2, 5], d_mlp=32)
    for i, step in enumerate((100, 200, 300, 400, 500)):
        t = i / 4
        state = {k: t * v + (1 - t) * 0.1 * torch.ones_like(v) for k, v in final.items()}
        path = store.run_dir(run.id) / "checkpoints" / f"step_{step:08d}.safetensors"
        save_checkpoint(path, state, {"step": step})
        store.add_artifact(run.id, path, "checkpoint", step=step)
        store.log_metrics(run.id, step, {"train_acc": 1.0, "test_loss": 10.0 ** (1 - 2 * i)})
    return store, run


def run_cli(argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_analyses_final_and_all_checkpoints(stored_run, capsys):
    store, run = stored_run
    assert run_cli(["fourier", "grok", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 500 and out["key_frequencies"] == [2, 5]
    assert run_cli(["fourier", "grok", "--checkpoint", "all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["step"] for c in out["checkpoints"]] == [100, 200, 300, 400, 500]
    assert out["phases"]["memorisation_end"] == 100
    assert store.get_result(run.id, "fourier", "series")["key_frequencies"] == [2, 5]
    assert run_cli(["fourier", "grok", "--checkpoint", "300"]) == 0
    assert "step 300" in capsys.readouterr().out
    with pytest.raises(UserError):
        run_cli(["fourier", "grok", "--checkpoint", "301"])
