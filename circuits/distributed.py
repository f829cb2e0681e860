"""Data-parallel Edge Pruning with ``torch.distributed`` (launched by ``torchrun``).

Every process loads the same model and dataset, draws the same seeded batches and mask samples,
runs its slice ``batch[rank::world]`` and averages the gradients of the mask parameters and
Lagrange multipliers with one all-reduce per step; so all processes keep identical masks and,
up to float summation order, follow the same trajectory as one process on the whole batch
(the test checks that the extracted circuit is the same). Backend: NCCL on GPU, gloo on CPU.
For models that do not fit one device, use FSDP around :class:`MaskedModel` weights (not done
here: our models fit).

    torchrun --nproc-per-node 2 -m circuits.distributed --model RUN_OR_DIR --task TASK \\
        --target-sparsity 0.95 --steps 3000 --out circuit.json
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist


def allreduce_mean(params: list[torch.Tensor]) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="data-parallel Edge Pruning (torchrun)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--target-sparsity", type=float, default=0.95)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--examples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr-warmup", type=int, default=200)
    ap.add_argument("--ablation", default="corrupted")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from circuits.datasets import make_pairs
    from circuits.extract import extract
    from circuits.masked_forward import MaskedModel
    from circuits.prune import PruneConfig, prune
    from circuits.target import load_target

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = None
    if world > 1:
        cuda = torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        if args.batch_size % world:
            raise SystemExit(f"batch size {args.batch_size} is not divisible by {world} "
                             "processes")
    try:
        target = load_target(args.model, device=device)
        data = make_pairs(args.task, target, args.examples, args.seed)
        mm = MaskedModel(target.bridge)
        cfg = PruneConfig(target_sparsity=args.target_sparsity, steps=args.steps,
                          batch_size=args.batch_size, seed=args.seed, ablation=args.ablation,
                          lr_warmup=args.lr_warmup, log_every=max(args.steps // 10, 1))
        res = prune(mm, data, cfg, grad_hook=allreduce_mean if world > 1 else None,
                    shard=(rank, world))
        if world > 1:  # every process must hold the same masks
            spread = res.log_alpha.clone().to(mm.W_E.device)
            top = spread.clone()
            dist.all_reduce(top, op=dist.ReduceOp.MAX)
            assert float((top - spread).abs().max()) == 0.0, "ranks diverged"
        keep = extract(mm.graph, res.log_alpha)
        if rank == 0:
            names = mm.graph.edge_names()
            from workbench.checkpoint import atomic_write_json
            atomic_write_json(args.out, {
                "world_size": world, "edges": [n for n, k in zip(names, keep.tolist()) if k],
                "expected_sparsity": res.expected_sparsity, "final": res.final,
                "log_alpha": res.log_alpha.tolist(), "wall_seconds": res.wall_seconds})
    finally:
        if world > 1:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
