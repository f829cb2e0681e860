"""Data-parallel training with torch.distributed: ``torchrun --nproc_per_node N -m
workbench.cli train ...`` runs N ranks; each takes an equal shard of every batch, DDP averages
the gradients (or, with ``parallel=fsdp``, FSDP2 shards parameters, gradients and optimizer
state and gathers them for checkpoints), and rank 0 alone writes to the run store.

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


def run_to_resume(store, ref: str, ctx: DistContext, *, kind: str, noun: str):
    """The run ``ref`` that ``--resume`` continues. Rank 0 alone checks it (its kind, not
    completed, not being trained) and broadcasts its id, or its refusal, and the other ranks
    follow: once rank 0 has claimed the run they would see it running (their own launch) and
    refuse; and a refusal on rank 0 alone would leave them waiting in the broadcast."""
    if not ctx.is_main:
        run_id, error = broadcast_object(None, ctx)
        if error is not None:
            raise UserError(error)
        return store.get_run(run_id)
    try:
        run = store.get_run(ref)
        if run.kind != kind:
            raise UserError(f"run {ref!r} is a {run.kind} run, not a {noun} run")
        if run.status == "completed":
            raise UserError(f"run {ref!r} has already completed")
        if run.status == "running":
            raise UserError(f"run {ref!r} is still being trained by process {run.owner}; "
                            "stop it before resuming")
    except UserError as exc:
        broadcast_object((None, str(exc)), ctx)
        raise
    broadcast_object((run.id, None), ctx)
    return run


def shard(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's share of a batch (strided; sizes differ by at most one)."""
    if indices.numel() < ctx.world_size:
        raise UserError(f"a batch of {indices.numel()} examples cannot be split over "
                        f"{ctx.world_size} ranks")
    return indices[ctx.rank::ctx.world_size]


def wrap(module: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """DDP around ``module`` under torchrun (FSDP modules are sharded in place instead)."""
    if ctx.world_size == 1 or is_sharded(module):
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def shard_fully(module: torch.nn.Module) -> None:
    """FSDP2 (``fully_shard``) on ``module`` as one unit: parameters, gradients and AdamW
    moments are split across ranks between steps and gathered for each forward. One unit
    because the trainer's fast forward reads weights directly rather than through submodule
    calls, so only the root's hooks see the forward."""
    from torch.distributed.fsdp import fully_shard

    fully_shard(module)


def is_sharded(module: torch.nn.Module) -> bool:
    return any(_is_dtensor(p) for p in module.parameters())


def _is_dtensor(t) -> bool:
    return type(t).__name__ == "DTensor" or type(getattr(t, "data", None)).__name__ == "DTensor"


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole of a sharded tensor (a collective: every rank must call it), else ``t``."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` split across ranks the way ``like`` is (``full`` itself if ``like`` is not
    sharded); every rank passes the same ``full``."""
    if not hasattr(like, "device_mesh"):
        return full.to(like.device)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(like.device), like.device_mesh, like.placements)


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()
