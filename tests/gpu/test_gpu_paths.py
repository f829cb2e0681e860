"""The GPU paths on a real device: bf16-autocast pretraining that resumes after a kill, a
compiled run matching eager, activations collected and probes fitted on the device matching
the CPU, and an Edge Pruning search under bf16 finding the planted circuit.

Marked ``gpu`` and skipped without CUDA (CI has none); ``WORKBENCH_TEST_DEVICE=cpu`` runs the
same checks on the CPU, so the file is exercised where no GPU is lent. On a GPU machine:
``python3 -m pytest -m gpu tests/gpu`` (``benchmarks/gpu_session.sh`` runs it first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

DEVICE = os.environ.get("WORKBENCH_TEST_DEVICE") or ("cuda" if torch.cuda.is_available()
                                                      else None)
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(DEVICE is None, reason="no CUDA device")]

SMALL = {"n_layers": "2", "d_model": "64", "n_heads": "4", "d_mlp": "256", "n_ctx": "32",
         "batch_size": "8", "log_every": "5", "eval_every": "20", "eval_batches": "1",
         "log_checkpoints": "0", "checkpoint_every": "10"}


def _losses(ref, store) -> dict[int, float]:
    from workbench.runs import load_run
    return dict(load_run(ref, store).metrics()["train_loss"])


def test_bf16_pretraining_on_the_device_learns_and_resumes_after_a_kill(home, arith_corpus):
    from tests.training.lm.test_lm_pretrain import _kill_after_checkpoint, _sets
    from training.lm.api import pretrain
    from workbench.runs import load_run
    from workbench.store import RunStore

    store = RunStore(home)
    overrides = {**SMALL, "steps": "200", "device": DEVICE, "precision": "bf16"}
    whole = pretrain(str(arith_corpus), overrides=overrides, name="whole", store=store)
    assert whole.device.startswith(DEVICE) and whole.status == "completed"
    curve = _losses("whole", store)
    assert all(torch.isfinite(torch.tensor(v)) for v in curve.values())
    assert curve[max(curve)] < 0.7 * curve[min(curve)]  # it learns under autocast
    env = dict(os.environ, WORKBENCH_HOME=str(home))
    victim = subprocess.Popen([sys.executable, "-m", "workbench.cli", "pretrain", "--data",
                               str(arith_corpus), "--name", "victim", "--no-progress",
                               *_sets(overrides)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    run = _kill_after_checkpoint(store, victim, "victim", min_step=50)
    pretrain(resume=run.id, store=store)
    assert load_run("victim", store).checkpoints() == load_run("whole", store).checkpoints()
    resumed = _losses("victim", store)
    assert sorted(resumed) == sorted(curve)  # no gap, no repeat
    for step, loss in curve.items():  # GPU kernels need not be bit-deterministic
        assert resumed[step] == pytest.approx(loss, rel=2e-2), step


@pytest.mark.skipif(DEVICE == "cpu", reason="compiling for the CPU takes minutes")
def test_a_compiled_run_matches_eager(home, arith_corpus):
    from training.lm.api import pretrain
    from workbench.store import RunStore

    store = RunStore(home)
    overrides = {**SMALL, "steps": "40", "device": DEVICE, "precision": "bf16"}
    pretrain(str(arith_corpus), overrides=overrides, name="eager", store=store)
    pretrain(str(arith_corpus), overrides={**overrides, "compile": "true"}, name="compiled",
             store=store)
    eager, compiled = _losses("eager", store), _losses("compiled", store)
    assert sorted(eager) == sorted(compiled)
    for step in eager:
        assert compiled[step] == pytest.approx(eager[step], rel=3e-2), step


def _source(device: str):
    from probes.sources import ModelSource, config_hash
    from workbench.models import ModelConfig, to_bridge
    cfg = ModelConfig(n_layers=3, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=50,
                      d_vocab_out=50, n_ctx=12, normalization_type="LN", init_seed=0)
    return ModelSource(bridge=to_bridge(cfg).to(device), name="probe-3L", run_id=None,
                       step=None, config_hash=config_hash(cfg.to_dict()),
                       model_config=cfg.to_dict())


def test_collection_and_probe_fits_on_the_device_match_the_cpu(tmp_path):
    from probes.activations import load_activations
    from probes.collect import collect_activations
    from probes.fit import fit_probes
    from probes.sources import load_data

    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (600, 12), generator=gen)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"tokens": row, "label": row[-1] % 5}) + "\n"
                            for row in tokens.tolist()))
    acts = {}
    for device in ("cpu", DEVICE):
        model = _source(device)
        out = tmp_path / f"acts-{device}"
        collect_activations(model, load_data(model, str(data)), out, layers="all",
                            positions="-1,-2", batch_size=64, chunk_size=256)
        acts[device] = load_activations(out)
    ref, got = acts["cpu"], acts[DEVICE]
    assert ref.sites == got.sites
    for site in ref.sites:
        assert torch.allclose(ref.acts[site], got.acts[site], atol=1e-3, rtol=1e-3), site
    for kind in ("logistic", "linear", "lowrank:4"):
        cpu = fit_probes(ref, "label", kind=kind, seed=0)
        dev = fit_probes(ref, "label", kind=kind, seed=0, device=DEVICE)
        assert cpu.test_score[0][0] > cpu.chance + 0.5  # the embeddings hold the last token
        for a, b in zip(cpu.test_score, dev.test_score):
            assert a == pytest.approx(b, abs=0.02), kind


def test_edge_pruning_under_bf16_on_the_device_finds_the_planted_circuit(home, tmp_path,
                                                                        capsys):
    from circuits.io import load_circuit
    from tests.circuits.conftest import TRUE_CIRCUIT, save_hand_built_run
    from workbench.cli import main

    _, task = save_hand_built_run(home, tmp_path)
    code = main(["circuits", "discover", "--model", "hand-built", "--task", str(task),
                 "--steps", "300", "--target-sparsity", "1.05", "--examples", "64",
                 "--lr", "0.3", "--lambda-lr", "0.05", "--batch-size", "32", "--seed", "3",
                 "--device", DEVICE, "--precision", "bf16", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(load_circuit(out["paths"]["json"]).edges) == TRUE_CIRCUIT
