import argparse
import json

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.cli import pair_train_mask, parse_checkpoint, register


def _save_split(store, run_id, task_data):
    """The split file a trained run is born with (training.api.write_run_files)."""
    from training.datasets import encode
    from workbench.checkpoint import save_checkpoint

    enc = encode(task_data, "auto", causal_task=False, causal_model=True)
    save_checkpoint(store.layout(run_id).split, {"train_x": enc.train_x, "test_x": enc.test_x},
                    enc.vocab_json())
    store.add_artifact(run_id, store.layout(run_id).split, "split")


def test_train_mask_is_the_split_the_run_stored(store):
    from training.api import prepare_run
    from training.tasks.modular import ModularAddition
    from workbench.runs import load_run

    run_id = prepare_run("modular-addition", preset="tiny", overrides={"p": 13, "task.seed": 5,
                                                                       "frac_train": 0.3},
                         store=store)
    mask = pair_train_mask(*load_run(run_id, store).split())
    data = ModularAddition(p=13, frac_train=0.3, seed=5).generate()
    train = {(int(e.input[0]), int(e.input[1])) for e in data.train}
    assert int(mask.sum()) == len(train)
    assert {(a, b) for a in range(13) for b in range(13) if mask[a, b]} == train


def test_a_run_without_a_split_is_a_user_error(store):
    from workbench.runs import load_run

    run = store.create_run(kind="train", task="modular-addition", config={"task_params": {}})
    with pytest.raises(UserError, match="no data split"):
        load_run(run.id, store).split()


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
    from training.tasks.modular import ModularAddition
    _save_split(store, run.id, ModularAddition(p=p, frac_train=0.3, seed=0).generate())
    final = constructed_model(p, [2, 5], d_mlp=32)
    for i, step in enumerate((100, 200, 300, 400, 500)):
        t = i / 4
        state = {k: t * v + (1 - t) * 0.1 * torch.ones_like(v) for k, v in final.items()}
        path = store.layout(run.id).checkpoint(step)
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
