"""torchrun data parallelism on CPU: 2 gloo ranks train the same model as 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from workbench.runs import load_run
from workbench.store import RunStore


@pytest.mark.integration
@pytest.mark.parametrize("batch", ["0", "40"])  # full batch (uneven shards: 135) and mini-batch
def test_two_gloo_ranks_match_single_process(home, run_cli, batch):
    args = ["train", "modular-addition", "--preset", "tiny", "--set", "steps=30",
            "--set", f"batch_size={batch}", "--no-progress", "--json"]
    single = json.loads(run_cli(*args, "--name", "single", check=True).stdout)
    env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", "--master_port", str(29500 + int(batch)), "-m", "workbench.cli",
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
