"""torchrun runs the same ``discover`` as the CLI: same options, same JSON, same store row."""

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from tests.circuits.conftest import TRUE_CIRCUIT, save_hand_built_run
from workbench.store import RunStore


@pytest.mark.integration
def test_two_gloo_processes_run_the_same_discover(tmp_path):
    home = tmp_path / "home"
    run_id, task = save_hand_built_run(home, tmp_path)
    env = {**os.environ, "WORKBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    common = ["--model", run_id, "--task", str(task), "--target-sparsity", "1.05",
              "--steps", "300", "--examples", "64", "--seed", "5", "--json"]
    one = subprocess.run([sys.executable, "-m", "workbench.cli", "circuits", "discover",
                          *common], env=env, check=True, timeout=600, capture_output=True,
                         text=True)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                          "2", "--master-port", "29517", "-m", "circuits.distributed",
                          *common], env=env, timeout=600, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone prints
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert set(a) == set(b)  # the same result fields, evaluation included
    circuits = [json.loads(open(r["paths"]["json"]).read()) for r in (a, b)]
    assert set(circuits[0]["edges"]) == set(circuits[1]["edges"]) == TRUE_CIRCUIT
    masks = [load_file(r["paths"]["masks"])["log_alpha"] for r in (a, b)]
    assert float((masks[0] - masks[1]).abs().max()) < 1e-2
    store = RunStore(home)
    rows = [store.get_run(r["run_id"]) for r in (a, b)]
    assert [r.kind for r in rows] == ["circuits", "circuits"]
    assert [r.status for r in rows] == ["completed", "completed"]
    assert rows[0].config == rows[1].config  # one config, whichever launcher
    assert rows[1].summary["kl"] == b["kl"] and rows[1].summary["n_edges"] == b["n_edges"]
    assert len(store.list_runs(kind="circuits")) == 2  # rank 1 created no run


def test_batch_not_divisible_by_the_processes_is_one_line(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "3", "WORKBENCH_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "circuits.distributed", "--model", "x",
                           "--task", "induction", "--batch-size", "32"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not divisible by 3" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
