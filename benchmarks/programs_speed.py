"""Transformer Programs training speed (issue 5, "Figures to reach: Training speed").

The paper's sort settings (3 layers, 4 categorical + 4 numerical heads, 2 + 2 MLPs, batch 512,
Adam lr 0.05, temperature 3.0 -> 0.01, seed 0) on the paper's sort task (5 letters + EOS, so
variables are 8 wide as in the original's ``d_var 8``). An epoch is the original's: its sort
data is 20,000 draws of which 14,124 are distinct, split 81/9/10 into 11,439 training
sequences (23 steps of 512; its logs). Ours, drawn the same way, has 11,346 training sequences
(also 23 steps of 512); the timed epochs use them (at most the original's 11,439). The
original implementation takes ~4 s per epoch on this machine when it is otherwise idle
(~17 minutes for 250 epochs). Prints our seconds per epoch (median over timed
epochs, after one warm-up epoch), the speed-up over 4 s, and optionally a per-op profile of one
step. Runs on one thread by default (the machine has 2 shared cores).

    python benchmarks/programs_speed.py [--epochs 3] [--threads 1] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch

ORIGINAL_S_PER_EPOCH = 4.0
ORIGINAL_N_TRAIN = 11439  # training sequences per epoch of the original's sort run


def setup(seed: int = 0, n_train: int = ORIGINAL_N_TRAIN):
    from programs.config import PAPER_PRESETS, preset_task_params
    from programs.data import encode, shape_for
    from programs.model import ProgramModel
    from training.tasks import make_task

    cfg = PAPER_PRESETS["sort"]
    data = make_task("sort", **preset_task_params("paper", "sort")).generate()
    shape = shape_for(data, cfg.var_width, cfg.mask_padding)
    x, y = encode(data.train[:n_train], shape, data.pad_token)
    torch.manual_seed(seed)
    model = ProgramModel(cfg, shape)
    return cfg, model, x, y


def time_epochs(cfg, model, x, y, epochs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per epoch of the training step (the code path of programs.train).

    CPU time (``process_time``) is less sensitive than wall time to other processes on a
    shared machine (though cache and memory-bandwidth contention still inflate it)."""
    from programs.train import make_optimizer, make_step, temperature

    opt = make_optimizer(model, cfg)
    step_fn = make_step(model, opt)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(x)
    steps = math.ceil(n / cfg.batch_size)
    total = steps * cfg.epochs
    times, cpu, step = [], [], 0
    for _ in range(epochs + 1):
        order = torch.randperm(n, generator=gen)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(steps):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            step_fn(x[idx], y[idx], temperature(cfg, step, total))
            step += 1
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times[1:], cpu[1:]  # the first epoch warms allocator and caches


def profile_step(cfg, model, x, y, rows: int = 25) -> str:
    from torch.profiler import ProfilerActivity, profile

    from programs.train import make_optimizer, make_step

    idx = torch.arange(cfg.batch_size)
    step_fn = make_step(model, make_optimizer(model, cfg))

    def step() -> None:
        step_fn(x[idx], y[idx], 1.0)

    for _ in range(2):  # warm-up, outside the profile
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--train-size", type=int, default=ORIGINAL_N_TRAIN,
                   help="sequences per epoch (default: the original's sort epoch)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, model, x, y = setup(n_train=args.train_size)
    if args.profile:
        print(profile_step(cfg, model, x, y))
    times, cpu = time_epochs(cfg, model, x, y, args.epochs)
    med = statistics.median(times)
    cpu_med = statistics.median(cpu)
    out = {"task": "sort", "layers": cfg.n_layers, "heads": [cfg.n_cat_heads, cfg.n_num_heads],
           "mlps": [cfg.n_cat_mlps, cfg.n_num_mlps], "batch": cfg.batch_size,
           "threads": args.threads, "train_size": len(x), "width": model.shape.width,
           "epoch_seconds": [round(t, 3) for t in times],
           "s_per_epoch": round(med, 3),
           "cpu_s_per_epoch": round(cpu_med, 3), "original_s_per_epoch": ORIGINAL_S_PER_EPOCH,
           "speedup": round(ORIGINAL_S_PER_EPOCH / med, 2),
           "projected_250_epochs_min": round(med * 250 / 60, 1)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"sort, paper settings ({cfg.n_layers} layers, {cfg.n_cat_heads}+{cfg.n_num_heads} "
              f"heads, {cfg.n_cat_mlps}+{cfg.n_num_mlps} MLPs, batch {cfg.batch_size}), "
              f"{len(x)} sequences per epoch, variables {model.shape.width} wide, "
              f"{args.threads} thread(s)")
        print(f"  epochs: {', '.join(f'{t:.2f}' for t in times)} s wall, "
              f"{', '.join(f'{t:.2f}' for t in cpu)} s CPU")
        print(f"  {med:.2f} s/epoch vs the original's ~{ORIGINAL_S_PER_EPOCH:.0f} s/epoch: "
              f"{ORIGINAL_S_PER_EPOCH / med:.2f}x (250 epochs: {med * 250 / 60:.1f} min)")
        print(f"  CPU time {cpu_med:.2f} s/epoch: {ORIGINAL_S_PER_EPOCH / cpu_med:.2f}x")
        print("  (timings on a shared machine: compare runs taken under similar load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
