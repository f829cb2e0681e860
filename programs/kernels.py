"""Hand-written autograd kernels of the relaxed Transformer Program (batch-last layout).

Attention in a Transformer Program multiplies tiny per-sequence matrices (``n_ctx x k``). As
batched matmuls they are thousands of 8x10 GEMMs (slow on a CPU); as broadcasts they materialise
``[heads, k, n, n, batch]`` tensors that fall out of cache. :func:`pair_scores` and
:func:`gather` loop over one position axis instead (``n_ctx`` steps of cache-sized fused
multiply-adds over a contiguous batch axis), forward and backward; both reduce to one
contraction, :func:`_contract`.

:func:`mlp` is the two-layer ReLU MLP of every module, batched over modules, with a backward
that picks the GEMM orientations MKL runs fastest for these shapes (a long ``n * batch`` axis
against widths of 10-64) and reuses the ReLU output as its mask.

Shapes: ``A, B, V: [heads, k, n, batch]``; ``S, P: [heads, n_query, n_key, batch]``.
"""

from __future__ import annotations

import torch


def _contract(p: torch.Tensor, v: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``O[h, l, i] = sum_j p[h, i, j] v[h, l, j]`` (``transpose``: ``p[h, j, i]`` instead)."""
    if transpose:
        p = p.transpose(1, 2)  # a strided view: each addcmul reads it in place
    out = p[:, None, :, 0] * v[:, :, 0:1]  # [h, l, i, b]
    for j in range(1, v.shape[2]):
        out.addcmul_(p[:, None, :, j], v[:, :, j:j + 1])
    return out


def _scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``S[h, i, j] = sum_l a[h, l, i] b[h, l, j]``: one fused multiply-add per value ``l``."""
    out = a[:, 0, :, None] * b[:, 0, None]  # [h, i, j, b]
    for l in range(1, a.shape[1]):
        out.addcmul_(a[:, l, :, None], b[:, l, None])
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
        return _contract(grad, b), _contract(grad, a, transpose=True)


class Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, v):
        ctx.save_for_backward(p, v)
        return _contract(p, v)

    @staticmethod
    def backward(ctx, grad):
        p, v = ctx.saved_tensors
        grad = grad.contiguous()
        return _scores(grad, v), _contract(p, grad, transpose=True)


def pair_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[h, k, n, B] x [h, k, n, B] -> [h, n, n, B]``: per-sequence ``a^T b``."""
    return PairScores.apply(a.contiguous(), b.contiguous())


def gather(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[h, n, n, B] x [h, k, n, B] -> [h, k, n, B]``: per-sequence ``v p^T``."""
    return Gather.apply(p.contiguous(), v.contiguous())


class MLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2):
        h = torch.relu_(torch.baddbmm(b1, w1, x))  # [m, d, N]
        ctx.save_for_backward(x, w1, w2, h)
        return torch.baddbmm(b2, w2, h)  # [m, o, N]

    @staticmethod
    def backward(ctx, grad):
        x, w1, w2, h = ctx.saved_tensors
        grad = grad.contiguous()  # [m, o, N]
        g_w2 = torch.bmm(grad, h.transpose(1, 2))  # [m, o, d]
        g_b2 = grad.sum(2, keepdim=True)
        # ReLU backward from its output: one fused pass (a mask + masked_fill is two)
        g_h = torch.ops.aten.threshold_backward(torch.bmm(w2.transpose(1, 2), grad), h, 0)
        g_b1 = g_h.sum(2, keepdim=True)
        # (x g_h^T)^T, not g_h x^T: the short axis leading the product is much faster in MKL
        g_w1 = torch.bmm(x, g_h.transpose(1, 2)).transpose(1, 2).contiguous()  # [m, d, f]
        g_x = torch.bmm(w1.transpose(1, 2), g_h) if ctx.needs_input_grad[0] else None
        return g_x, g_w1, g_b1, g_w2, g_b2


def mlp(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
        b2: torch.Tensor) -> torch.Tensor:
    """``[m, f, N] -> [m, o, N]``: ``w2 relu(w1 x + b1) + b2`` per module ``m``.

    ``w1: [m, d, f]``, ``b1: [m, d, 1]``, ``w2: [m, o, d]``, ``b2: [m, o, 1]``.
    """
    return MLP.apply(x.contiguous(), w1, b1, w2, b2)
