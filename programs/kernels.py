"""Per-sequence attention products in the batch-last layout, without 5-D intermediates.

Attention in a Transformer Program multiplies tiny per-sequence matrices (``n_ctx x k``). As
batched matmuls they are thousands of 8x10 GEMMs (slow on a CPU); as broadcasts they materialise
``[heads, k, n, n, batch]`` tensors that fall out of cache. These autograd functions loop over
one position axis instead (``n_ctx`` steps of cache-sized fused multiply-adds over a contiguous
batch axis), forward and backward.

Shapes: ``A, B, V: [heads, k, n, batch]``; ``S, P: [heads, n_query, n_key, batch]``.
"""

from __future__ import annotations

import torch


def _scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``S[h, i, j] = sum_l a[h, l, i] b[h, l, j]`` (batch innermost)."""
    n = b.shape[2]
    return torch.stack([(a * b[:, :, j:j + 1]).sum(1) for j in range(n)], 2)


def _gather(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``O[h, l, i] = sum_j p[h, i, j] v[h, l, j]``."""
    out = p[:, None, :, 0] * v[:, :, 0:1]
    for j in range(1, v.shape[2]):
        out.addcmul_(p[:, None, :, j], v[:, :, j:j + 1])
    return out


def _gather_t(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``R[h, l, j] = sum_i p[h, i, j] g[h, l, i]`` (the transpose of :func:`_gather`)."""
    out = p[:, None, 0] * g[:, :, 0:1]
    for i in range(1, g.shape[2]):
        out.addcmul_(p[:, None, i], g[:, :, i:i + 1])
    return out


class PairScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _scores(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        grad = grad.contiguous()
        return _gather(grad, b), _gather_t(grad, a)


class Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, v):
        ctx.save_for_backward(p, v)
        return _gather(p, v)

    @staticmethod
    def backward(ctx, grad):
        p, v = ctx.saved_tensors
        grad = grad.contiguous()
        return _scores(grad, v), _gather_t(p, grad)


def pair_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[h, k, n, B] x [h, k, n, B] -> [h, n, n, B]``: per-sequence ``a^T b``."""
    return PairScores.apply(a.contiguous(), b.contiguous())


def gather(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[h, n, n, B] x [h, k, n, B] -> [h, k, n, B]``: per-sequence ``v p^T``."""
    return Gather.apply(p.contiguous(), v.contiguous())
