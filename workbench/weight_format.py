"""The TransformerLens-format weight types every forward and analysis reads: a model's
embeddings, blocks (``W_Q`` ``[n_heads, d_model, d_head]`` …), norms and unembedding, and the
config facts a forward needs. :mod:`workbench.weights` fills them from a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from workbench.activations import Activation, activation


@dataclass(frozen=True)
class Norm:
    """A LayerNorm ("LN") or RMSNorm ("RMS"), or none (``kind`` None); the parameter-free
    variants (LNPre/RMSPre) have no ``weight``. ``module`` is the model's own norm where there
    is one (for forwards that must match the module bit for bit)."""

    kind: str | None
    weight: torch.Tensor | None = None  # [d_model]
    bias: torch.Tensor | None = None  # [d_model]
    eps: float = 1e-5
    module: Callable[[torch.Tensor], torch.Tensor] | None = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Centre (LN) and scale to unit RMS, without the affine part; the variance is taken in
        at least float32 (bf16 inputs), as TransformerLens and Llama do."""
        if self.kind is None:
            return x
        dtype = x.dtype
        if self.kind == "LN":
            x = x - x.mean(-1, keepdim=True)
        xw = x.to(torch.promote_types(dtype, torch.float32))
        return (xw * torch.rsqrt(xw.pow(2).mean(-1, keepdim=True) + self.eps)).to(dtype)

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is not None:
            x = x * self.weight
        if self.bias is not None:
            x = x + self.bias
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(self.normalize(x))

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own norm module where known (its kernels), else :meth:`__call__`."""
        return self.module(x) if self.module is not None else self(x)


@dataclass(frozen=True)
class Rotary:
    """RoPE tables for positions ``0 .. seq-1``: ``tables(seq, device, dtype)`` returns
    ``(cos, sin, rotate)`` with cos/sin ``[seq, rotary_dim]``; ``rotate`` is the source's
    convention (adjacent pairs in TransformerLens's native model, halves in Hugging Face's)."""

    tables: Callable[[int, torch.device, torch.dtype], tuple]


@dataclass(frozen=True)
class BlockWeights:
    """One transformer block. Query heads ``H``, key/value heads ``G`` (``G < H``: GQA)."""

    W_Q: torch.Tensor  # [H, d_model, d_head]
    W_K: torch.Tensor  # [G, d_model, d_head]
    W_V: torch.Tensor  # [G, d_model, d_head]
    W_O: torch.Tensor  # [H, d_head, d_model]
    b_Q: torch.Tensor | None  # [H, d_head]
    b_K: torch.Tensor | None  # [G, d_head]
    b_V: torch.Tensor | None  # [G, d_head]
    b_O: torch.Tensor | None  # [d_model]
    ln1: Norm
    ln2: Norm | None  # None: attention-only
    W_in: torch.Tensor | None  # [d_model, d_mlp]
    W_gate: torch.Tensor | None  # [d_model, d_mlp] (gated MLPs)
    W_out: torch.Tensor | None  # [d_mlp, d_model]
    b_in: torch.Tensor | None  # [d_mlp]
    b_out: torch.Tensor | None  # [d_model]
    attn_scale: float  # scores are q.k / attn_scale (TransformerLens's convention)
    score_scale: float  # the factor the source itself multiplies scores by


@dataclass(frozen=True)
class ModelWeights:
    """Embeddings, blocks and unembedding in TransformerLens format, and the config facts a
    forward needs."""

    W_E: torch.Tensor  # [d_vocab, d_model]
    W_pos: torch.Tensor | None  # [n_ctx, d_model]; None: rotary (or no) positions
    blocks: tuple[BlockWeights, ...]
    ln_final: Norm
    W_U: torch.Tensor | None  # [d_model, d_vocab_out] (None: a hand-made state without one)
    b_U: torch.Tensor | None  # [d_vocab_out]
    n_heads: int
    n_kv_heads: int
    d_head: int
    act_fn: str | None
    normalization_type: str | None  # as configured: LN, LNPre, RMS, RMSPre or None
    positional_embedding_type: str  # "standard" or "rotary"
    causal: bool
    rotary: Rotary | None = None
    gated_mlp: bool = False
    attn_scores_soft_cap: float = -1.0
    output_logits_soft_cap: float = -1.0
    parallel_attn_mlp: bool = False

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return int(self.W_E.shape[1])

    @property
    def has_mlp(self) -> bool:
        return bool(self.blocks) and self.blocks[0].W_out is not None

    @property
    def act(self) -> Activation:
        return activation(self.act_fn)

    def stacked(self, name: str) -> torch.Tensor:
        """One block field stacked over layers, e.g. ``stacked("W_Q")`` ``[L, H, d, d_head]``."""
        return torch.stack([getattr(b, name) for b in self.blocks])

    def to(self, dtype: torch.dtype | None = None) -> "ModelWeights":
        """Detached copies in ``dtype`` (norm modules dropped: they hold the old dtype)."""
        def conv(v):
            if isinstance(v, torch.Tensor):
                return v.detach().to(dtype) if dtype is not None else v.detach()
            if isinstance(v, Norm):
                return replace(v, weight=conv(v.weight), bias=conv(v.bias), module=None)
            return v

        blocks = tuple(replace(b, **{f.name: conv(getattr(b, f.name)) for f in fields(b)})
                       for b in self.blocks)
        return replace(self, **{f.name: conv(getattr(self, f.name)) for f in fields(self)
                                if f.name != "blocks"}, blocks=blocks)


def linear_weight(w: torch.Tensor, kind: str) -> torch.Tensor:
    """A TransformerLens-format matrix in ``nn.Linear`` layout ``[out, in]``: ``kind`` "qkv"
    (``[H, d, dh]`` -> ``[H*dh, d]``), "o" (``[H, dh, d]`` -> ``[d, H*dh]``) or "in"
    (``[in, out]`` -> ``[out, in]``). For native weights this is the parameter itself (a view)."""
    if kind == "qkv":
        return w.transpose(1, 2).reshape(-1, w.shape[1])
    if kind == "o":
        return w.reshape(-1, w.shape[2]).T
    assert kind == "in", kind
    return w.T


def linear_bias(b: torch.Tensor | None) -> torch.Tensor | None:
    """``[H, dh]`` -> ``[H*dh]`` (None stays None)."""
    return None if b is None else b.reshape(-1)

__all__ = ["Activation", "BlockWeights", "ModelWeights", "Norm", "Rotary", "linear_bias",
           "linear_weight"]
