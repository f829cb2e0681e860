"""``torchrun -m circuits.distributed`` runs ``workbench circuits discover`` on several
processes: the same options, the same search (:func:`circuits.api.discover` with a
:class:`~circuits.dist_context.DistContext`), the same store row, evaluation and JSON, written
by rank 0. Edge Pruning is data-parallel (each process runs its slice of every batch and the
mask gradients are all-reduced, see :mod:`circuits.dist_context`); EAP and ACDC run whole on
every process. Backend: NCCL on GPU, gloo on CPU. For models that do not fit one device, use
FSDP around :class:`~circuits.masked_forward.MaskedModel` weights (not done here: ours fit).

    torchrun --nproc-per-node 2 -m circuits.distributed --model RUN --task TASK \\
        --target-sparsity 0.95 --steps 3000 --json
"""

from __future__ import annotations

import argparse
import os
import sys

import torch


def _context(batch_size: int):
    from circuits.dist_context import DistContext
    from workbench.errors import UserError

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext()
    if batch_size % world:
        raise UserError(f"batch size {batch_size} is not divisible by {world} processes")
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    device = None
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    return DistContext(rank=dist.get_rank(), world_size=world, device=device)


def main(argv=None) -> int:
    from circuits.cli import add_discover_arguments, run_discover
    from workbench.errors import UserError

    parser = argparse.ArgumentParser(prog="torchrun -m circuits.distributed",
                                     description="workbench circuits discover on several "
                                                 "processes (torchrun)")
    add_discover_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ctx = None
    try:
        ctx = _context(args.batch_size)
        return run_discover(args, ctx)
    except UserError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if ctx is not None and ctx.world_size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
