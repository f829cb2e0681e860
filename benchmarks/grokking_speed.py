"""Grokking run speed on this machine: ms per epoch of our trainer vs a plain-PyTorch
re-implementation of the reference training loop, measured side by side in one run, and
(with --grok) the time until test accuracy >= 99% for the full grokking preset.

The reference loop (Nanda et al. 2023's recipe as published) runs the full forward over all
three positions and computes both the train and the test loss every epoch; the published
figure for it on this 2-core machine is ~314 ms/epoch. Our trainer evaluates train and test
splits every 100 epochs (``eval_every=100``) and computes the last block only at the answer
position. Both use the same model, data, initialisation and AdamW settings.

    python benchmarks/grokking_speed.py             # per-epoch figures (~1 minute)
    python benchmarks/grokking_speed.py --grok --home DIR  # plus a grokking run (~20 min), kept
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from training.api import build_config, train
from workbench.models import build_native
from workbench.store import RunStore

PUBLISHED_REFERENCE_MS = 314.0


def reference_epoch_ms(epochs: int) -> float:
    """ms/epoch of the reference-style loop: full forward, train + test loss every epoch."""
    config, data = build_config("modular-addition", preset="grokking")
    model = build_native(config.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / 10, 1.0))
    x, y = data.train_x, data.train_y[:, -1]  # [3830, 3], answers at the "=" position
    tx, ty = data.test_x, data.test_y[:, -1]

    def epoch():
        logits = model(x)[:, -1].to(torch.float64)  # [3830, 113]
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        with torch.inference_mode():
            F.cross_entropy(model(tx)[:, -1].to(torch.float64), ty)

    for _ in range(3):
        epoch()
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - t0) / epochs * 1000


def trainer_epoch_ms(epochs: int, store: RunStore) -> float:
    """ms/epoch of ``workbench train --preset grokking`` itself (store writes included)."""
    result = train("modular-addition", preset="grokking", store=store,
                   overrides={"steps": epochs, "eval_every": 100, "checkpoint_every": epochs,
                              "log_checkpoints": 0})
    return result.wall_seconds / epochs * 1000


def grok(store: RunStore, epochs: int) -> None:
    result = train("modular-addition", preset="grokking", store=store, progress=True,
                   name="grokking-reference", overrides={"steps": epochs})
    history = store.metric_history(result.run_id)
    elapsed = dict(history["elapsed_seconds"])
    train_acc = dict(history["train_acc"])
    first_train = next((s for s, a in history["train_acc"] if a >= 0.99), None)
    first_test = next((s for s, a in history["test_acc"] if a >= 0.99), None)
    print(f"grokking preset (p=113, 30% train, eval every 100 epochs), run {result.run_id}:")
    print(f"  train acc >= 99% at epoch {first_train}")
    if first_test is None:
        print(f"  test acc never reached 99% in {epochs} epochs")
        return
    print(f"  test  acc >= 99% at epoch {first_test}, after {elapsed[first_test]:.0f} s "
          f"({elapsed[first_test] / 60:.1f} min); train acc then {train_acc[first_test]:.3f}")
    print(f"  final test acc {result.test_acc:.4f}, test loss {result.test_loss:.3g}, "
          f"train loss {result.train_loss:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--grok", action="store_true", help="also run the full grokking preset")
    parser.add_argument("--grok-epochs", type=int, default=25_000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--home", help="keep the runs in this store (e.g. for `workbench "
                        "fourier grokking-reference --checkpoint all`); default: a temp dir")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        store = RunStore(args.home or scratch)
        ours = trainer_epoch_ms(args.epochs, store)
        ref = reference_epoch_ms(args.epochs)
        print(f"threads: {args.threads}")
        print(f"reference-style loop (train+test loss every epoch): {ref:7.1f} ms/epoch")
        print(f"workbench trainer (eval every 100 epochs):          {ours:7.1f} ms/epoch")
        print(f"speed-up vs reference-style loop, same run:         {ref / ours:7.2f}x")
        print(f"speed-up vs published reference ({PUBLISHED_REFERENCE_MS:.0f} ms/epoch):   "
              f"{PUBLISHED_REFERENCE_MS / ours:7.2f}x")
        if args.grok:
            grok(store, args.grok_epochs)


if __name__ == "__main__":
    main()
