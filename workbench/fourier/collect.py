"""Activation collection for a 1-layer modular-arithmetic transformer: every ``[a, b, =]`` input
in one batch, computed from the weights (no forward pass through a module).

Model: one block as :mod:`workbench.models` builds it for the grokking preset: learned
positions, no LayerNorm, attention with ``1 / sqrt(d_head)`` scaling, ReLU MLP, unembedding;
logits are read at the last position. Because the query position always holds "=" (token
``p``) at position 2, its query vector is the same for every input, and keys and values at
positions 0 and 1 depend only on ``a`` and ``b``; we therefore compute them per token (``p``
rows) and only the attention mixing, the MLP and the unembedding per input pair. The result
equals the module's own forward to float rounding (tested).

The weights are TransformerLens-format (:mod:`workbench.weights`), so the model may be a
``TransformerBridge`` (any the bridge loads), the native module, or a native checkpoint state
dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from workbench.activations import activation
from workbench.errors import UserError
from workbench.weights import ModelWeights, linear_bias, linear_weight, model_weights, \
    state_dict_weights


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


def modular_model_weights(model, *, n_heads: int | None = None,
                          act_fn: str | None = None) -> ModelWeights:
    """TransformerLens-format weights of a 1-layer, norm-free MLP transformer with learned
    positions; anything else is refused (this path would silently get it wrong).

    ``model``: a ``TransformerBridge``, the native module, :class:`ModelWeights`, or a native
    state dict (then ``n_heads`` is required: the weights do not state it). For a model,
    ``n_heads`` and ``act_fn`` default to its own and must agree with it when given.
    """
    if isinstance(model, Mapping):
        if n_heads is None:
            raise UserError("n_heads is required with a state dict")
        w = state_dict_weights(model, n_heads=n_heads, act_fn=act_fn or "relu")
    else:
        w = model_weights(model)
        for name, given, own in (("n_heads", n_heads, w.n_heads), ("act_fn", act_fn, w.act_fn)):
            if given is not None and given != own:
                raise UserError(f"{name}={given!r} but the model has {name} {own!r}")
    missing = [name for name, t in (("W_pos", w.W_pos), ("W_U", w.W_U)) if t is None]
    if w.blocks:
        b = w.blocks[0]
        missing += [name for name in ("W_Q", "W_K", "W_V", "W_O", "W_in", "W_out")
                    if getattr(b, name) is None]
    if missing or not w.blocks:
        raise UserError(f"not a 1-layer MLP transformer with learned positions: missing "
                        f"{missing or ['blocks']}")
    if w.n_layers != 1:
        raise UserError(f"Fourier analysis supports 1-layer models only; this one has "
                        f"{w.n_layers}")
    if w.normalization_type is not None:
        raise UserError(f"Fourier analysis supports LayerNorm-free models only; this one has "
                        f"{w.normalization_type}")
    return w


def modular_weights(model, dtype: torch.dtype = torch.float64, *,
                    n_heads: int | None = None) -> ModularWeights:
    """``W_E``, ``W_in``, ``W_out`` and ``W_U`` of the modular model in ``dtype`` (a state dict
    needs no ``n_heads`` here: none of these is split by heads)."""
    if isinstance(model, Mapping) and n_heads is None:
        n_heads = 1
    w = modular_model_weights(model, n_heads=n_heads)
    b = w.blocks[0]
    return ModularWeights(w_e=w.W_E.detach().to(dtype), w_in=b.W_in.detach().to(dtype),
                          w_out=b.W_out.detach().to(dtype), w_u=w.W_U.detach().to(dtype))


def collect_modular(model, p: int, *, n_heads: int | None = None, act_fn: str | None = None,
                    attn_scale: float | None = None,
                    dtype: torch.dtype = torch.float32) -> ModularActivations:
    """Neuron activations and logits at the last position for every input ``[a, b, p]``.

    ``model``: see :func:`modular_model_weights` (a state dict needs ``n_heads``, and its
    ``act_fn`` defaults to relu); ``attn_scale`` defaults to the model's own (``sqrt(d_head)``
    in TransformerLens).
    """
    w = modular_model_weights(model, n_heads=n_heads, act_fn=act_fn)
    act = activation(w.act_fn)
    block = w.blocks[0]

    def get(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(dtype)

    w_e = get(w.W_E)  # [d_vocab, d_model]
    if w_e.shape[0] < p + 1:
        raise UserError(f"embedding has {w_e.shape[0]} tokens; p={p} needs p + 1 (with '=')")
    w_pos = get(w.W_pos)  # [n_ctx, d_model]
    if w_pos.shape[0] < 3:
        raise UserError(f"the modular model needs n_ctx >= 3, got {w_pos.shape[0]}")
    d_model = w_e.shape[1]
    n_heads, _, d_head = block.W_Q.shape
    hd = n_heads * d_head
    scale = block.attn_scale if attn_scale is None else attn_scale

    def linear(weight: torch.Tensor, kind: str, bias: torch.Tensor | None, size: int):
        # nn.Linear layout ([out, in]); absent biases are zeros, as in the module
        return (get(linear_weight(weight, kind)),
                get(bias) if bias is not None else torch.zeros(size, dtype=dtype))

    attn = {"q": linear(block.W_Q, "qkv", linear_bias(block.b_Q), hd),
            "k": linear(block.W_K, "qkv", linear_bias(block.b_K), hd),
            "v": linear(block.W_V, "qkv", linear_bias(block.b_V), hd),
            "o": linear(block.W_O, "o", block.b_O, d_model)}

    x0 = w_e[:p] + w_pos[0]  # [p, d_model] position 0 holds a
    x1 = w_e[:p] + w_pos[1]  # [p, d_model] position 1 holds b
    x2 = w_e[p] + w_pos[2]  # [d_model] position 2 holds "="

    def proj(name: str, x: torch.Tensor) -> torch.Tensor:
        weight, bias = attn[name]
        return F.linear(x, weight, bias).unflatten(-1, (n_heads, d_head))

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

    d_mlp = block.W_in.shape[1]
    w_in, b_in = linear(block.W_in, "in", block.b_in, d_mlp)  # [d_mlp, d_model]
    pre = F.linear(resid, w_in, b_in)  # [p, p, d_mlp]
    neurons = pre.relu_() if w.act_fn == "relu" else act(pre)
    w_out, b_out = linear(block.W_out, "in", block.b_out, d_model)  # [d_model, d_mlp]
    w_u = get(linear_weight(w.W_U, "in"))  # [d_vocab_out, d_model]
    # Unembed neurons through W_L = W_out W_U directly: cheaper than re-entering d_model.
    logits = neurons @ (w_out.T @ w_u.T) + (resid + b_out) @ w_u.T  # [p, p, d_vocab_out]
    return ModularActivations(neurons=neurons, logits=logits)
