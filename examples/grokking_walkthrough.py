"""Walkthrough: train the demo grokking model, then inspect it through the Python API.

    python examples/grokking_walkthrough.py

Runs the same code path as `workbench train modular-addition --preset demo`, then opens the
run, boots the final checkpoint as a TransformerBridge and prints a few things a researcher
looks at first (accuracy curves, attention pattern at the answer position).
"""

from __future__ import annotations

import torch

import workbench


def main() -> None:
    result = workbench.train("modular-addition", preset="demo", progress=True)
    run = workbench.load_run(result.run_id)
    print(f"run {run.id}: test accuracy {result.test_acc:.4f}, checkpoints {run.checkpoints()}")
    history = run.metrics()
    first = next((s for s, a in history["test_acc"] if a >= 0.99), None)
    print(f"train accuracy reached 1.0 at step "
          f"{next((s for s, a in history['train_acc'] if a >= 1.0), None)}; "
          f"test accuracy >= 0.99 at step {first}")

    model = run.model()  # TransformerBridge
    p = run.config["task_params"]["p"]
    a, b = torch.tensor([3, 10]), torch.tensor([7, 20])
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # [a, b, =]
    logits, cache = model.run_with_cache(tokens)
    print("predictions:", logits[:, -1].argmax(-1).tolist(), "expected:", ((a + b) % p).tolist())
    pattern = cache["blocks.0.attn.hook_pattern"][:, :, -1]  # [batch, head, key]
    print("attention from '=' to (a, b, =), per head:\n", pattern[0].round(decimals=2))


if __name__ == "__main__":
    main()
