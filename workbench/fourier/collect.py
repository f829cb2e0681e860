"""Activation collection for a 1-layer modular-arithmetic transformer: every ``[a, b, =]`` input
in one batch, straight from the state dict (no module construction).

Model: TransformerLens's native transformer (``transformer_lens.model_bridge.sources.native``)
as built by :mod:`workbench.models` for the grokking preset: learned positions, no LayerNorm,
causal attention with ``1 / sqrt(d_head)`` scaling, ReLU MLP, unbiased unembedding ``head``;
logits are read at the last position. Because the query position always holds "=" (token
``p``) at position 2, its query vector is the same for every input, and keys and values at
positions 0 and 1 depend only on ``a`` and ``b``; we therefore compute them per token (``p``
rows) and only the attention mixing, the MLP and the unembedding per input pair. The result
equals the module's own forward to float rounding (tested).

State-dict keys (nn.Linear layout, weight ``[out, in]``): ``tok_embed.weight``, ``pos.weight``,
``layers.0.attn.{q,k,v,o}.{weight,bias}``, ``layers.0.mlp.fc_{in,out}.{weight,bias}``,
``head.weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from workbench.errors import UserError, check_choice

_ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu,
         "gelu_new": lambda x: F.gelu(x, approximate="tanh")}
_REQUIRED = ("tok_embed.weight", "pos.weight", "layers.0.attn.q.weight", "layers.0.attn.k.weight",
             "layers.0.attn.v.weight", "layers.0.attn.o.weight", "layers.0.mlp.fc_in.weight",
             "layers.0.mlp.fc_out.weight", "head.weight")


@dataclass(frozen=True)
class ModularWeights:
    """The matrices the Fourier measures read, in the TransformerLens orientation."""

    w_e: torch.Tensor  # [d_vocab, d_model]
    w_in: torch.Tensor  # [d_model, d_mlp]
    w_out: torch.Tensor  # [d_mlp, d_model]
    w_u: torch.Tensor  # [d_model, d_vocab_out]

    @property
    def w_l(self) -> torch.Tensor:
        """``W_out @ W_U``: each neuron's direct effect on the logits, ``[d_mlp, d_vocab_out]``."""
        return self.w_out @ self.w_u


@dataclass(frozen=True)
class ModularActivations:
    """Activations over the full ``[p, p]`` input grid at the final position."""

    neurons: torch.Tensor  # [p, p, d_mlp] post-activation
    logits: torch.Tensor  # [p, p, d_vocab_out]


def _get(state: Mapping[str, torch.Tensor], key: str, dtype: torch.dtype) -> torch.Tensor:
    return state[key].detach().to(dtype)


def check_state(state: Mapping[str, torch.Tensor]) -> None:
    """Reject state dicts this 1-layer, LayerNorm-free path would silently get wrong."""
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise UserError(f"state dict is not a 1-layer MLP transformer: missing {missing}")
    extra = sorted(k for k in state if k.startswith("layers.") and not k.startswith("layers.0."))
    if extra:
        raise UserError(f"Fourier analysis supports 1-layer models only; found {extra[:3]}")
    norms = sorted(k for k in state if ".ln" in k or k.startswith("ln"))
    if norms:
        raise UserError(f"Fourier analysis supports LayerNorm-free models only; found {norms[:3]}")


def modular_weights(state: Mapping[str, torch.Tensor],
                    dtype: torch.dtype = torch.float64) -> ModularWeights:
    check_state(state)
    return ModularWeights(
        w_e=_get(state, "tok_embed.weight", dtype),
        w_in=_get(state, "layers.0.mlp.fc_in.weight", dtype).T,
        w_out=_get(state, "layers.0.mlp.fc_out.weight", dtype).T,
        w_u=_get(state, "head.weight", dtype).T,
    )


def _bias(state: Mapping[str, torch.Tensor], key: str, size: int,
          dtype: torch.dtype) -> torch.Tensor:
    return _get(state, key, dtype) if key in state else torch.zeros(size, dtype=dtype)


def collect_modular(state: Mapping[str, torch.Tensor], p: int, *, n_heads: int,
                    act_fn: str = "relu", attn_scale: float | None = None,
                    dtype: torch.dtype = torch.float32) -> ModularActivations:
    """Neuron activations and logits at the last position for every input ``[a, b, p]``.

    ``n_heads`` cannot be read from the weights (``q`` is ``[n_heads * d_head, d_model]``), so it
    is required; ``attn_scale`` defaults to ``sqrt(d_head)`` as in TransformerLens.
    """
    check_state(state)
    check_choice(act_fn, "act_fn", sorted(_ACTS))
    w_e = _get(state, "tok_embed.weight", dtype)  # [d_vocab, d_model]
    if w_e.shape[0] < p + 1:
        raise UserError(f"embedding has {w_e.shape[0]} tokens; p={p} needs p + 1 (with '=')")
    w_pos = _get(state, "pos.weight", dtype)  # [n_ctx, d_model]
    if w_pos.shape[0] < 3:
        raise UserError(f"the modular model needs n_ctx >= 3, got {w_pos.shape[0]}")
    d_model = w_e.shape[1]
    wq = _get(state, "layers.0.attn.q.weight", dtype)  # [H * dh, d_model]
    hd = wq.shape[0]
    if not isinstance(n_heads, int) or n_heads <= 0 or hd % n_heads:
        raise UserError(f"n_heads={n_heads!r} does not divide the attention width {hd}")
    d_head = hd // n_heads
    scale = math.sqrt(d_head) if attn_scale is None else attn_scale
    attn = {name: (_get(state, f"layers.0.attn.{name}.weight", dtype),
                   _bias(state, f"layers.0.attn.{name}.bias",
                         d_model if name == "o" else hd, dtype)) for name in "qkvo"}

    x0 = w_e[:p] + w_pos[0]  # [p, d_model] position 0 holds a
    x1 = w_e[:p] + w_pos[1]  # [p, d_model] position 1 holds b
    x2 = w_e[p] + w_pos[2]  # [d_model] position 2 holds "="

    def proj(name: str, x: torch.Tensor) -> torch.Tensor:
        w, b = attn[name]
        return F.linear(x, w, b).unflatten(-1, (n_heads, d_head))

    q = proj("q", x2)  # [H, dh]: the same query for every input
    s0 = torch.einsum("hd,ahd->ah", q, proj("k", x0)) / scale  # [p, H]
    s1 = torch.einsum("hd,bhd->bh", q, proj("k", x1)) / scale  # [p, H]
    s2 = torch.einsum("hd,hd->h", q, proj("k", x2)) / scale  # [H]
    scores = torch.stack(torch.broadcast_tensors(s0[:, None], s1[None, :], s2[None, None]),
                         dim=-1)  # [p, p, H, 3]
    pattern = scores.softmax(dim=-1)
    w_o, b_o = attn["o"]
    w_o_heads = w_o.T.reshape(n_heads, d_head, d_model)  # [H, dh, d_model]
    # Each value vector written straight into the residual stream, per head.
    ov0 = torch.einsum("ahd,hdm->ahm", proj("v", x0), w_o_heads)  # [p, H, d_model]
    ov1 = torch.einsum("bhd,hdm->bhm", proj("v", x1), w_o_heads)  # [p, H, d_model]
    ov2 = torch.einsum("hd,hdm->hm", proj("v", x2), w_o_heads)  # [H, d_model]
    attn_out = (torch.einsum("abh,ahm->abm", pattern[..., 0], ov0)
                + torch.einsum("abh,bhm->abm", pattern[..., 1], ov1)
                + pattern[..., 2] @ ov2 + b_o)  # [p, p, d_model]
    resid = x2 + attn_out  # [p, p, d_model]

    w_in = _get(state, "layers.0.mlp.fc_in.weight", dtype)  # [d_mlp, d_model]
    d_mlp = w_in.shape[0]
    b_in = _bias(state, "layers.0.mlp.fc_in.bias", d_mlp, dtype)
    pre = F.linear(resid, w_in, b_in)  # [p, p, d_mlp]
    neurons = pre.relu_() if act_fn == "relu" else _ACTS[act_fn](pre)
    w_out = _get(state, "layers.0.mlp.fc_out.weight", dtype)  # [d_model, d_mlp]
    b_out = _bias(state, "layers.0.mlp.fc_out.bias", d_model, dtype)
    w_u = _get(state, "head.weight", dtype)  # [d_vocab_out, d_model]
    # Unembed neurons through W_L = W_out W_U directly: cheaper than re-entering d_model.
    logits = neurons @ (w_out.T @ w_u.T) + (resid + b_out) @ w_u.T  # [p, p, d_vocab_out]
    return ModularActivations(neurons=neurons, logits=logits)
