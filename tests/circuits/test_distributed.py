import json
import os
import subprocess
import sys

import pytest

from tests.circuits.conftest import TRUE_CIRCUIT, save_hand_built_run


@pytest.mark.integration
def test_two_gloo_processes_find_the_same_circuit(tmp_path):
    home = tmp_path / "home"
    run_id, task = save_hand_built_run(home, tmp_path)
    env = {**os.environ, "WORKBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    common = ["-m", "circuits.distributed", "--model", run_id, "--task", str(task),
              "--target-sparsity", "1.05", "--steps", "300", "--lr-warmup", "20",
              "--examples", "64", "--seed", "5"]
    one = tmp_path / "one.json"
    two = tmp_path / "two.json"
    subprocess.run([sys.executable, *common, "--out", str(one)], env=env, check=True,
                   timeout=600, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                           "2", "--master-port", "29517", *common, "--out", str(two)], env=env,
                          timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert set(a["edges"]) == set(b["edges"]) == TRUE_CIRCUIT
    diff = max(abs(x - y) for x, y in zip(a["log_alpha"], b["log_alpha"]))
    assert diff < 1e-2, diff
