"""Which process of a torchrun job a circuit search runs in, and what that changes.

:func:`circuits.api.discover` takes a :class:`DistContext`: one process (``SINGLE``) searches
alone; under torchrun every process draws the same seeded batches and mask samples, runs its
slice ``batch[rank::world]`` and averages the mask parameters' and Lagrange multipliers'
gradients with one all-reduce per step, so all processes keep identical masks and, up to float
summation order, follow one process's trajectory on the whole batch. Rank 0 records the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: str | None = None  # this process's GPU under torchrun with CUDA

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prune_kwargs(self) -> dict:
        """The ``grad_hook`` and ``shard`` of :func:`circuits.prune.prune` for this process."""
        if self.world_size == 1:
            return {}
        return {"grad_hook": allreduce_mean, "shard": (self.rank, self.world_size)}

    def check_same(self, tensor: torch.Tensor) -> None:
        """Assert that every process holds the same ``tensor`` (the masks must not diverge)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        top = tensor.clone()
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
        assert float((top - tensor).abs().max()) == 0.0, "ranks diverged"


SINGLE = DistContext()


def allreduce_mean(params: list[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over the processes (one flat all-reduce)."""
    import torch.distributed as dist

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
