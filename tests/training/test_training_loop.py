"""The trainer: schedules, checkpoint series, determinism, exact resume after SIGKILL, NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from training.api import build_config, train
from training.config import TrainConfig
from training.trainer import TrainingFailed, checkpoint_steps, lr_at
from workbench.runs import load_run


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_checkpoint_series_has_log_spaced_and_periodic_steps():
    steps = checkpoint_steps(TrainConfig(steps=1000, checkpoint_every=250, log_checkpoints=4))
    assert {250, 500, 750, 1000, 1, 10, 100} <= steps
    assert max(steps) == 1000


@pytest.mark.integration
def test_tiny_run_learns_sort_and_loads_as_bridge(store):
    result = train("sort", preset="tiny", store=store)
    assert result.test_acc >= 0.95
    run = load_run(result.run_id, store)
    assert run.status == "completed"
    assert run.checkpoints()[-1] == result.steps
    history = run.metrics()
    assert history["test_acc"][-1][1] == pytest.approx(result.test_acc)
    cfg, data = build_config("sort", preset="tiny")
    bridge = run.model()
    logits = bridge(data.test_x[:64])  # [batch, pos, vocab]
    mask = data.test_y[:64] != -100
    acc = (logits.argmax(-1)[mask] == data.test_y[:64][mask]).float().mean().item()
    assert acc >= 0.9


def test_same_seed_same_weights_different_seed_differs(store):
    over = {"steps": 20, "eval_every": 10, "checkpoint_every": 10}
    a = train("modular-addition", preset="tiny", overrides=over, seed=1, store=store)
    b = train("modular-addition", preset="tiny", overrides=over, seed=1, store=store)
    c = train("modular-addition", preset="tiny", overrides=over, seed=2, store=store)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256


def test_minibatch_resume_in_process_is_bit_identical(store, monkeypatch):
    from training import checkpoints as ckpt

    over = {"steps": 40, "batch_size": 32, "eval_every": 10, "checkpoint_every": 15}
    full = train("modular-addition", preset="tiny", overrides=over, store=store)
    real_save = ckpt.save

    def save_then_die(*args, **kwargs):  # interrupted right after the step-30 checkpoint
        real_save(*args, **kwargs)
        if args[5] == 30:
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train("modular-addition", preset="tiny", overrides=over, store=store, name="part")
    monkeypatch.setattr(ckpt, "save", real_save)
    assert store.get_run("part").status == "cancelled"
    assert ckpt.checkpoint_steps_of(store, store.get_run("part").id) == [15, 30]
    resumed = train(resume="part", store=store)
    assert resumed.weights_sha256 == full.weights_sha256
    assert resumed.test_loss == full.test_loss
    assert ckpt.checkpoint_steps_of(store, resumed.run_id) == [15, 30, 40]


def test_nan_loss_marks_run_failed(store):
    with pytest.raises(TrainingFailed, match="loss became"):
        train("modular-addition", preset="tiny", overrides={"lr": 1e30, "steps": 50},
              store=store, name="diverged")
    run = store.get_run("diverged")
    assert run.status == "failed" and "loss became" in run.message


@pytest.mark.integration
def test_sigkill_then_resume_reaches_identical_weights(home, run_cli):
    args = ["train", "modular-addition", "--preset", "tiny", "--set", "steps=400",
            "--set", "checkpoint_every=20", "--no-progress", "--json"]
    reference = run_cli(*args, "--name", "uninterrupted", check=True)
    expected = json.loads(reference.stdout)["weights_sha256"]

    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args, "--name", "victim"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from workbench.store import RunStore
    store = RunStore(home)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until it is mid-run with a checkpoint or two
        try:
            steps = load_run("victim", store).checkpoints()
        except Exception:
            steps = []
        if len(steps) >= 2:
            break
        time.sleep(0.05)
    assert store.get_run("victim").status == "running"  # its process is alive
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # killed without any cleanup: the row still says running, readers see it is interrupted
    assert store.execute("SELECT status FROM runs WHERE name='victim'")[0][0] == "running"
    assert store.get_run("victim").status == "interrupted"
    assert load_run("victim", store).checkpoints()[-1] < 400
    resumed = run_cli("train", "--resume", "victim", "--no-progress", "--json", check=True)
    out = json.loads(resumed.stdout)
    assert out["weights_sha256"] == expected
    assert out["steps"] == 400
    history = load_run("victim", store).metrics()["train_loss"]
    assert [s for s, _ in history] == sorted({s for s, _ in history})  # no duplicated steps
    assert len(history) == 400 // 25
