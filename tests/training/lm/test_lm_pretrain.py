"""Pretraining end to end at tiny scale: the CLI's JSON and live metrics, every checkpoint of
the series loading as a Hugging Face model and as a TransformerBridge with equal logits, DDP
and FSDP2 (per block) on 2 gloo ranks matching 1 process, exact resume after SIGKILL, resume
on another world size, and bad input refused before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training.lm.api import pretrain
from workbench.cli import main
from workbench.runs import load_run
from workbench.store import RunStore

pytestmark = pytest.mark.integration

SMALL = {"n_layers": "1", "d_model": "32", "n_heads": "2", "d_mlp": "64", "n_ctx": "32",
         "batch_size": "4", "log_every": "5", "eval_every": "10", "eval_batches": "1",
         "log_checkpoints": "0"}


def _sets(overrides: dict) -> list[str]:
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]


def _torchrun(home, port, args, *, wait=True):
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "-m", "workbench.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    return json.loads(lines[0])


def _kill_after_checkpoint(store, proc, name, min_step=10, timeout=240):
    """SIGKILL the whole process group once run ``name`` has a checkpoint >= min_step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            run = store.get_run(name)
            steps = [a.step for a in store.artifacts(run.id, "checkpoint")]
            if steps and max(steps) >= min_step:
                break
        except Exception:  # the run is not created yet
            pass
        assert proc.poll() is None, "the victim ended before it could be killed"
        time.sleep(0.05)
    for pid in [proc.pid, *_descendants(proc.pid)]:  # torchrun puts ranks in own groups
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    deadline = time.time() + 30  # ranks die a moment after their launcher
    while store.get_run(name).status != "interrupted" and time.time() < deadline:
        time.sleep(0.1)
    run = store.get_run(name)
    assert run.status == "interrupted"  # killed mid-run: its owner is gone
    return run


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _logits(ref, store, step="final"):
    tokens = torch.arange(30).reshape(2, 15)
    with torch.no_grad():
        return load_run(ref, store).model(step)(tokens)


def test_cli_json_metrics_and_every_checkpoint_loads(home, run_cli, arith_corpus):
    transformers = pytest.importorskip("transformers")
    proc = run_cli("pretrain", "--data", arith_corpus, "--name", "tiny", "--json", "--no-progress",
                   *_sets({**SMALL, "steps": "30", "log_checkpoints": "3",
                            "checkpoint_every": "10"}), check=True)
    result = json.loads(proc.stdout)
    assert result["steps"] == 30 and result["tokens"] == 30 * 4 * 32
    assert result["tokens_per_second"] > 0 and 0 < result["mfu"] < 1
    assert result["val_loss"] is not None and result["train_loss"] < 5.5  # ln(320) = 5.77
    store = RunStore(home)
    run = load_run("tiny", store)
    assert run.run.kind == "pretrain" and run.status == "completed"
    metrics = run.metrics()
    for name in ("train_loss", "val_loss", "lr", "tokens_per_second", "mfu", "tokens"):
        assert name in metrics, name
    assert [s for s, _ in metrics["train_loss"]] == [5, 10, 15, 20, 25, 30]
    assert run.checkpoints() == result["checkpoints"] == [1, 5, 10, 20, 30]
    tokens = torch.randint(0, 300, (2, 20), generator=torch.Generator().manual_seed(1))
    for step in run.checkpoints():
        directory = run.checkpoint_path(step).parent
        assert {"config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json"} <= {p.name for p in directory.iterdir()}
        with torch.no_grad():
            hf = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()(tokens)
            bridge = run.model(step)(tokens)  # [batch, pos, vocab]
        assert torch.allclose(hf.logits, bridge, atol=1e-4), step
    assert result["output_dir"] == str(run.checkpoint_path(30).parent)
    from workbench.models import wrap_nnsight
    traced = wrap_nnsight(run.model())
    with traced.trace(tokens):
        resid = traced.blocks[0].hook_resid_post.output.save()
    assert resid.shape == (2, 20, 32)


def test_two_gloo_ranks_ddp_and_fsdp_match_one_process(home, arith_corpus):
    """Micro-batches of 1: 4 accumulation steps on one process, 2 per rank on two."""
    store = RunStore(home)
    overrides = {**SMALL, "steps": "20", "checkpoint_every": "10", "micro_batch_size": "1"}
    single = pretrain(str(arith_corpus), overrides=overrides, name="single", store=store)
    one = load_run("single", store).metrics()
    for port, parallel in ((29641, "ddp"), (29642, "fsdp")):
        args = ["pretrain", "--data", str(arith_corpus), "--name", parallel, "--json",
                "--no-progress", *_sets({**overrides, "parallel": parallel})]
        multi = _torchrun(home, port, args)
        assert multi["world_size"] == 2 and multi["tokens"] == single.tokens
        two = load_run(parallel, store).metrics()
        for name in ("train_loss", "val_loss"):
            assert [s for s, _ in one[name]] == [s for s, _ in two[name]]
            for (_, a), (_, b) in zip(one[name], two[name]):
                assert a == pytest.approx(b, rel=1e-5, abs=1e-6), (parallel, name)
        assert torch.allclose(_logits("single", store), _logits(parallel, store), atol=1e-4)
        assert load_run(parallel, store).checkpoints() == [10, 20]  # whole tensors, once


def test_sigkill_resume_is_bit_identical(home, arith_corpus):
    store = RunStore(home)
    overrides = {**SMALL, "steps": "300", "checkpoint_every": "10"}
    whole = pretrain(str(arith_corpus), overrides=overrides, name="whole", store=store)
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    victim = subprocess.Popen([sys.executable, "-m", "workbench.cli", "pretrain", "--data",
                               str(arith_corpus), "--name", "victim", "--no-progress",
                               *_sets(overrides)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    run = _kill_after_checkpoint(store, victim, "victim")
    resumed = pretrain(resume=run.id, store=store)
    assert resumed.weights_sha256 == whole.weights_sha256
    assert load_run("victim", store).checkpoints() == load_run("whole", store).checkpoints()
    curve = dict(load_run("victim", store).metrics()["train_loss"])
    assert curve == dict(load_run("whole", store).metrics()["train_loss"])  # no gap, no repeat
    assert not any(p.name.endswith(".tmp") for p in
                   (store.run_dir(run.id) / "checkpoints").iterdir())


def test_two_rank_run_resumes_on_one_rank_with_the_same_global_batch(home, arith_corpus):
    store = RunStore(home)
    overrides = {**SMALL, "steps": "200", "checkpoint_every": "10"}
    pretrain(str(arith_corpus), overrides=overrides, name="ref", store=store)
    victim = _torchrun(home, 29651, ["pretrain", "--data", str(arith_corpus), "--name", "two",
                                     "--no-progress", *_sets(overrides)], wait=False)
    run = _kill_after_checkpoint(store, victim, "two")
    resumed = pretrain(resume=run.id, store=store)
    assert resumed.world_size == 1
    ref = dict(load_run("ref", store).metrics()["train_loss"])
    got = dict(load_run("two", store).metrics()["train_loss"])
    assert sorted(got) == sorted(ref)
    for step in ref:
        assert got[step] == pytest.approx(ref[step], rel=1e-4), step
    assert torch.allclose(_logits("ref", store), _logits("two", store), atol=1e-3)


@pytest.mark.parametrize("case", ["unknown-key", "seq-len", "no-data", "not-prepared",
                                  "memory", "bad-preset", "mixed-arch"])
def test_bad_input_one_line_exit_2_nothing_written(home, arith_corpus, tmp_path, capsys, case):
    args = ["pretrain", "--data", str(arith_corpus), "--no-progress"]
    if case == "unknown-key":
        args += ["--set", "warmup=3"]
    elif case == "seq-len":
        args += ["--set", "n_ctx=32", "--set", "seq_len=64"]
    elif case == "no-data":
        args = ["pretrain", "--no-progress"]
    elif case == "not-prepared":
        args[2] = str(tmp_path)
    elif case == "memory":
        args += ["--set", "n_layers=400", "--set", "d_model=8192", "--set", "n_heads=64",
                 "--set", "d_mlp=32768"]
    elif case == "bad-preset":
        args += ["--preset", "gpt5"]
    elif case == "mixed-arch":
        args += ["--set", "positions=rotary"]
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("workbench: error:"), err
    if case == "memory":
        assert "not enough memory" in err[0] and "GiB" in err[0]
    assert RunStore(home).list_runs() == []


def test_resume_refuses_a_changed_manifest(home, arith_corpus, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(arith_corpus, copy)
    store = RunStore(home)
    result = pretrain(str(copy), overrides={**SMALL, "steps": "10"}, name="r", store=store)
    store.set_status(result.run_id, "cancelled")  # as if stopped: resumable
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"val_frac": 0.1', '"val_frac": 0.2'))
    before = load_run("r", store).metrics()
    assert main(["pretrain", "--resume", "r", "--no-progress"]) == 2
    assert "manifest" in capsys.readouterr().err
    assert load_run("r", store).metrics() == before
