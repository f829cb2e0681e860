"""torchrun data parallelism on CPU: 2 gloo ranks train the same model as 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.runs import load_run
from workbench.store import RunStore


@pytest.mark.integration
@pytest.mark.parametrize("batch, parallel", [
    ("0", "ddp"),  # full batch (uneven shards: 135)
    ("40", "ddp"),  # mini-batch
    ("40", "fsdp"),  # parameters, gradients and AdamW moments sharded (FSDP2)
])
def test_two_gloo_ranks_match_single_process(home, run_cli, batch, parallel):
    args = ["train", "modular-addition", "--preset", "tiny", "--set", "steps=30",
            "--set", f"batch_size={batch}", "--set", "checkpoint_every=10", "--no-progress",
            "--json"]
    single = json.loads(run_cli(*args, "--name", "single", check=True).stdout)
    args += ["--set", f"parallel={parallel}"]
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", "--master_port", str(29500 + int(batch) + (parallel == "fsdp")), "-m", "workbench.cli",
                           *args, "--name", "ddp"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    ddp = json.loads(lines[0])
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=1e-3)
    assert ddp["test_loss"] == pytest.approx(single["test_loss"], rel=1e-3)
    # Compare functions, not raw weights: the key bias has an exactly-zero true gradient
    # (softmax ignores it), so Adam turns rounding noise there into arbitrary steps.
    store = RunStore(home)
    tokens = torch.cartesian_prod(torch.arange(13), torch.arange(13))
    tokens = torch.cat([tokens, torch.full((169, 1), 13)], dim=1)  # [a, b, =]
    with torch.no_grad():
        single_logits = load_run("single", store).model()(tokens)
        ddp_logits = load_run("ddp", store).model()(tokens)
    assert torch.allclose(single_logits, ddp_logits, atol=2e-3)
    assert load_run("ddp", store).status == "completed"
    # the checkpoint series was gathered and written once, with whole (unsharded) tensors
    assert load_run("ddp", store).checkpoints() == [10, 20, 30]


@pytest.mark.integration
def test_fsdp_run_killed_then_resumed_matches_uninterrupted(home, tmp_path):
    import signal
    import time

    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    args = ["train", "modular-addition", "--preset", "tiny", "--set", "steps=600",
            "--set", "batch_size=40", "--set", "checkpoint_every=20", "--set", "parallel=fsdp",
            "--no-progress", "--json"]

    def torchrun(port, *extra, wait=True):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "workbench.cli", *extra]
        if not wait:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, [ln for ln in proc.stderr.splitlines() if "rror" in ln]
        return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][0])

    expected = torchrun(29531, *args, "--name", "whole")["weights_sha256"]
    victim = torchrun(29532, *args, "--name", "victim", wait=False)
    store = RunStore(home)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if len(load_run("victim", store).checkpoints()) >= 3:
                break
        except Exception:
            pass
        time.sleep(0.1)
    for pid in [victim.pid, *_descendants(victim.pid)]:  # torchrun and both ranks, mid-run
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    victim.wait()
    deadline = time.time() + 30  # the ranks die a moment after their launcher
    while store.get_run("victim").status != "interrupted" and time.time() < deadline:
        time.sleep(0.1)
    assert store.get_run("victim").status == "interrupted"
    assert load_run("victim", store).checkpoints()[-1] < 600
    resumed = torchrun(29533, "train", "--resume", "victim", "--no-progress", "--json")
    assert resumed["steps"] == 600
    assert resumed["weights_sha256"] == expected


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its ranks in their own process groups)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.mark.parametrize("kind", ["train", "pretrain"])
def test_a_follower_rank_resumes_the_run_rank_0_has_claimed(home, run_cli, monkeypatch, kind,
                                                            tmp_path):
    """Under torchrun rank 0 claims the run (status running, owner itself) before rank 1 may
    have read it: rank 1 follows rank 0's run id instead of refusing a run "still being
    trained" by its own launch (the race seen in the FSDP resume test)."""
    import training.api as api
    import training.lm.api as lm_api
    from training.distributed import DistContext
    store = RunStore(home)
    if kind == "train":
        run_cli("train", "modular-addition", "--preset", "tiny", "--set", "steps=4",
                "--name", "r", "--no-progress", "--json", check=True)
        module = api
    else:
        from training.lm.prepare import prepare
        prepare(["builtin:arithmetic:60"], tokenizer="train:300", output=str(tmp_path / "d"),
                val_frac=0.1)
        run_cli("pretrain", "--data", str(tmp_path / "d"), "--set", "steps=2", "--name", "r",
                "--no-progress", "--json", check=True)
        module = lm_api
    run_id = store.get_run("r").id
    store.set_status(run_id, "running")  # claimed by rank 0, a live process (this one)
    follower = DistContext(rank=1, world_size=2, local_rank=1)
    monkeypatch.setattr(module, "context_from_env", lambda: follower)
    monkeypatch.setattr("training.distributed.broadcast_object",
                        lambda obj, ctx: (run_id, None))  # rank 0's answer
    followed = []
    monkeypatch.setattr(module, "_run", lambda store, rid, *a, **k: followed.append(rid))
    (module.train if kind == "train" else module.pretrain)(resume="r", store=store)
    assert followed == [run_id]


def test_a_refusal_on_rank_0_reaches_the_follower_ranks_as_the_same_error(home, monkeypatch):
    """Rank 0 broadcasts its refusal too: a follower raises the same one-line error instead
    of waiting in the broadcast for a run id that never comes."""
    from training.distributed import DistContext, run_to_resume
    from workbench.errors import UserError
    store = RunStore(home)
    run = store.create_run(kind="train", task="sort", config={}, name="done")
    store.set_status(run.id, "completed")
    sent = []
    monkeypatch.setattr("training.distributed.broadcast_object",
                        lambda obj, ctx: sent.append(obj) or obj)
    with pytest.raises(UserError, match="has already completed") as on_main:
        run_to_resume(store, "done", DistContext(rank=0, world_size=2, local_rank=0),
                      kind="train", noun="training")
    monkeypatch.setattr("training.distributed.broadcast_object", lambda obj, ctx: sent[0])
    with pytest.raises(UserError) as on_follower:
        run_to_resume(store, "done", DistContext(rank=1, world_size=2, local_rank=1),
                      kind="train", noun="training")
    assert sent == [(None, str(on_main.value))]
    assert str(on_follower.value) == str(on_main.value)
