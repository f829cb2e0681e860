"""Every training run stores its whole resolved task config, so resuming and analysing it do
not depend on the code's defaults of a later day; old stores are migrated."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
import torch

from training.api import load_data, prepare_run, train
from training.config import RunConfig
from training.tasks import get_task_class, make_task
from workbench.checkpoint import load_checkpoint
from workbench.store import RunStore

OVER = {"steps": 40, "batch_size": 32, "eval_every": 10, "checkpoint_every": 20}


def test_default_run_stores_every_task_parameter_and_fact(store):
    run = store.get_run(prepare_run("reverse", store=store))
    names = {f.name for f in dataclasses.fields(get_task_class("reverse"))}
    assert set(run.config["task_params"]) == names  # not just the preset's keys
    assert run.config["task_params"] == make_task("reverse", n_samples=20000).params()
    parity = store.get_run(prepare_run("sparse-parity", preset="tiny", store=store))
    task = make_task("sparse-parity", **parity.config["task_params"])
    assert parity.config["task_facts"] == {"support": list(task.support())}


def test_split_file_holds_the_data_training_uses(store):
    run_id = prepare_run("modular-addition", preset="tiny", store=store)
    split, meta = load_checkpoint(store.layout(run_id).split)
    data = load_data(RunConfig.from_dict(store.get_run(run_id).config))
    assert torch.equal(split["train_x"], data.train_x) and torch.equal(split["test_y"],
                                                                      data.test_y)
    assert meta["input_vocab"] == list(data.input_vocab)
    assert [a.kind for a in store.artifacts(run_id, "split")] == ["split"]


def test_prepared_run_trains_from_its_stored_config(store):
    made = train("modular-addition", preset="tiny", overrides=OVER, store=store)
    prepared = prepare_run("modular-addition", preset="tiny", overrides=OVER, store=store)
    assert store.get_run(prepared).status == "created"
    again = train(run_id=prepared, store=store)
    assert again.weights_sha256 == made.weights_sha256


def test_changed_code_default_leaves_resume_and_data_unaffected(store, monkeypatch):
    from training import checkpoints as ckpt
    from training.tasks.modular import ModularAddition

    full = train("modular-addition", preset="tiny", overrides=OVER, store=store)
    real_save = ckpt.save

    def save_then_die(*args, **kwargs):  # interrupted right after the step-20 checkpoint
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train("modular-addition", preset="tiny", overrides=OVER, store=store, name="part")
    monkeypatch.setattr(ckpt, "save", real_save)
    config = RunConfig.from_dict(store.get_run("part").config)
    before = load_data(config)
    # a later version of the code changes the task's default seed (the run never set it)
    monkeypatch.setitem(ModularAddition.__init__.__kwdefaults__, "seed", 7)
    changed = make_task("modular-addition", p=13, frac_train=0.8).generate()
    assert changed.train != make_task("modular-addition", p=13, frac_train=0.8,
                                      seed=0).generate().train  # the default really moved
    after = load_data(RunConfig.from_dict(store.get_run("part").config))
    assert torch.equal(before.train_x, after.train_x)
    resumed = train(resume="part", store=store)
    assert resumed.weights_sha256 == full.weights_sha256
    # the Fourier analysis reads the run's own split: the same as under the old default
    from workbench.fourier.cli import analyze_run, load_fourier_run
    from workbench.runs import load_run

    changed_view = analyze_run(load_fourier_run("part", load_run("part", store)))
    monkeypatch.setitem(ModularAddition.__init__.__kwdefaults__, "seed", 0)
    assert analyze_run(load_fourier_run("part", load_run("part", store))) == changed_view
    mask = load_fourier_run("part", load_run("part", store)).train_mask
    assert int(mask.sum()) == before.train_x.shape[0]


def test_old_store_train_run_is_resolved_and_says_so(home):
    store = RunStore(home)
    made = train("reverse", preset="tiny", overrides={"steps": 4, "eval_every": 2,
                                                       "checkpoint_every": 2}, store=store)
    resolved = store.get_run(made.run_id).config
    legacy = {k: v for k, v in resolved.items() if k != "task_facts"}
    legacy["task_params"] = {"n_samples": 2000}  # what the preset set: all an old run kept
    store.set_config(made.run_id, legacy)
    store.remove_artifact(made.run_id, "split.safetensors")
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("PRAGMA user_version = 3")  # before migration 4
    migrated = RunStore(home).get_run(made.run_id)
    assert migrated.config["task_params"] == resolved["task_params"]
    assert "resolved with the defaults" in migrated.config["migration"]
    assert "n_samples" in migrated.config["migration"]  # what was stored is kept in the note
    assert store.layout(made.run_id).split.is_file()
    assert RunConfig.from_dict(migrated.config).migration == migrated.config["migration"]
