"""Data-parallel training with torch.distributed: ``torchrun --nproc_per_node N -m
workbench.cli train ...`` runs N ranks; each takes an equal shard of every batch, DDP averages
the gradients, and rank 0 alone writes to the run store.

Backend: NCCL on CUDA, gloo on CPU (so the path is exercised without a GPU). The loss on each shard is scaled so that the
averaged gradient equals the single-process batch gradient up to float rounding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from workbench.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext(rank=0, world_size=1, local_rank=0)


def context_from_env() -> DistContext:
    """The torchrun context (initialising the process group once), or ``SINGLE``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's ``obj`` on every rank (e.g. the run id it created)."""
    if ctx.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's share of a batch (strided; sizes differ by at most one)."""
    if indices.numel() < ctx.world_size:
        raise UserError(f"a batch of {indices.numel()} examples cannot be split over "
                        f"{ctx.world_size} ranks")
    return indices[ctx.rank::ctx.world_size]


def wrap(module: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    if ctx.world_size == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()
