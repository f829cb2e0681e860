"""A model's weights in TransformerLens format: the one place that knows how models store them.

Every forward and analysis (the trainer's fast forward, Edge Pruning's masked forward, the
Fourier and Walsh analyses) reads :class:`ModelWeights` and never a model's own parameter
names, so it works on any model the bridge loads. :func:`model_weights` takes

- a ``TransformerBridge`` (an in-house run's ``load_run(ref).model()``, ``to_bridge``, or a
  Hugging Face directory booted by ``load_hf_bridge``): read through the bridge's own
  TransformerLens-format properties (``blocks[i].attn.W_Q`` ``[n_heads, d_model, d_head]``,
  ``mlp.W_in`` ``[d_model, d_mlp]``, ``W_U`` ``[d_model, d_vocab_out]`` …), which handle each
  architecture's layout (fused QKV, Conv1D, grouped-query heads);
- TransformerLens's native module (what the trainer optimises; wrapping it in a bridge would
  replace its submodules in place), read by its parameter names below;
- and :func:`state_dict_weights` maps a native checkpoint state dict the same way.

Native tensors come back as views of the parameters (differentiable, no copies), and
:func:`linear_weight` turns them back into the ``nn.Linear`` layout they came from, so a forward
built on them runs the very kernels of the module's own forward (bit-identical losses).
Config facts (activation, norm kind, positions, causality, attention scale, RoPE) travel along.
The types are in :mod:`workbench.weight_format` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import SimpleNamespace

import torch

from workbench.errors import UserError
from workbench.weight_format import (BlockWeights, ModelWeights, Norm, Rotary, linear_bias,
                                     linear_weight)


def _opt(obj, name: str) -> torch.Tensor | None:
    """Tensor attribute ``name`` of a bridge component, or None where the architecture lacks it.

    Which exception a TransformerBridge weight property raises for a component the architecture
    does not have depends on the adapter, so every exception listed below means "absent". A
    wrong guess does not pass silently: the forwards built on these weights are checked against
    the bridge's own logits (tests; Edge Pruning before every search)."""
    try:
        value = getattr(obj, name)
    except (AttributeError, TypeError, NotImplementedError, RuntimeError, ValueError):
        return None
    return value if isinstance(value, torch.Tensor) else None


def _base_kind(kind: str | None) -> str | None:
    if kind is None:
        return None
    return "LN" if kind.upper().startswith("LN") else "RMS"


def _scales(cfg, layer: int, hf_scaling=None) -> tuple[float, float]:
    """``(attn_scale, score_scale)``: the TransformerLens divisor and the multiplier the source
    applies (Hugging Face attention modules state theirs as ``scaling``)."""
    if getattr(cfg, "use_attn_scale", True) and float(cfg.attn_scale) > 0:
        divisor = float(cfg.attn_scale)
        score = 1.0 / float(cfg.attn_scale)
    else:
        divisor = math.sqrt(cfg.d_head)
        score = 1.0 / math.sqrt(cfg.d_head)
    if isinstance(hf_scaling, float):
        return divisor, hf_scaling
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        score /= layer + 1
        divisor *= layer + 1
    return divisor, score


def _facts(cfg) -> dict:
    def opt(name, default):
        return getattr(cfg, name, default) or default

    return dict(n_heads=int(cfg.n_heads), n_kv_heads=int(opt("n_key_value_heads", cfg.n_heads)),
                d_head=int(cfg.d_head), act_fn=opt("act_fn", None),
                normalization_type=cfg.normalization_type,
                positional_embedding_type=opt("positional_embedding_type", "standard").lower(),
                causal=opt("attention_dir", "causal") == "causal",
                gated_mlp=bool(opt("gated_mlp", False)),
                attn_scores_soft_cap=float(opt("attn_scores_soft_cap", -1.0)),
                output_logits_soft_cap=float(opt("output_logits_soft_cap", -1.0)),
                parallel_attn_mlp=bool(opt("parallel_attn_mlp", False)))


def _adjacent_pairs(x: torch.Tensor) -> torch.Tensor:
    return torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)


def _halves(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _native_rotary(rotary) -> Rotary:
    return Rotary(lambda seq, device, dtype: (rotary.cos_cached[:seq].to(dtype),
                                              rotary.sin_cached[:seq].to(dtype),
                                              _adjacent_pairs))


def _hf_rotary(module, d_head: int) -> Rotary:
    def tables(seq, device, dtype):
        probe = torch.zeros(1, seq, d_head, dtype=dtype, device=device)
        cos, sin = module(probe, torch.arange(seq, device=device)[None])
        return cos[0].to(dtype), sin[0].to(dtype), _halves
    return Rotary(tables)


# -- from a TransformerBridge -----------------------------------------------------------------
def _bridge_norm(component, kind: str | None, default_eps: float) -> Norm:
    base = _base_kind(kind)
    if base is None:
        return Norm(None)
    orig = getattr(component, "_original_component", component)
    eps = getattr(orig, "eps", None) or getattr(orig, "variance_epsilon", None) or default_eps
    w = _opt(orig, "weight")
    b = _opt(orig, "bias") if base == "LN" else None
    return Norm(base, None if w is None else w.detach(), None if b is None else b.detach(),
                float(eps), orig)


def _bridge_weights(bridge) -> ModelWeights:
    cfg = bridge.cfg
    facts = _facts(cfg)
    kind = cfg.normalization_type
    eps = float(getattr(cfg, "eps", 1e-5))
    blocks = []
    for layer, blk in enumerate(bridge.blocks):
        attn, mlp = blk.attn, getattr(blk, "mlp", None)
        has_mlp = not getattr(cfg, "attn_only", False) and mlp is not None
        hf_scaling = getattr(getattr(attn, "_original_component", None), "scaling", None)
        attn_scale, score_scale = _scales(cfg, layer, hf_scaling)
        blocks.append(BlockWeights(
            W_Q=attn.W_Q, W_K=attn.W_K, W_V=attn.W_V, W_O=attn.W_O, b_Q=_opt(attn, "b_Q"),
            b_K=_opt(attn, "b_K"), b_V=_opt(attn, "b_V"), b_O=_opt(attn, "b_O"),
            ln1=_bridge_norm(blk.ln1, kind, eps),
            ln2=_bridge_norm(blk.ln2, kind, eps) if has_mlp else None,
            W_in=_opt(mlp, "W_in") if has_mlp else None,
            W_gate=_opt(mlp, "W_gate") if has_mlp else None,
            W_out=_opt(mlp, "W_out") if has_mlp else None,
            b_in=_opt(mlp, "b_in") if has_mlp else None,
            b_out=_opt(mlp, "b_out") if has_mlp else None,
            attn_scale=attn_scale, score_scale=score_scale))
    final_kind = "RMS" if getattr(cfg, "final_rms", False) and kind else kind
    rotary = None
    if facts["positional_embedding_type"] == "rotary":
        native = getattr(getattr(bridge, "original_model", None), "rotary", None)
        hf = getattr(bridge, "rotary_emb", None)
        if native is not None:
            rotary = _native_rotary(native)
        elif hf is not None:
            rotary = _hf_rotary(getattr(hf, "_original_component", hf), int(cfg.d_head))
    return ModelWeights(
        W_E=bridge.W_E,
        W_pos=_opt(bridge, "W_pos") if facts["positional_embedding_type"] != "rotary" else None,
        blocks=tuple(blocks), ln_final=_bridge_norm(bridge.ln_final, final_kind, eps),
        W_U=bridge.W_U, b_U=_opt(bridge, "b_U"), rotary=rotary, **facts)


# -- from TransformerLens's native module or its state dict -----------------------------------
def _native_weights(get: Callable[[str], torch.Tensor | None], cfg, n_layers: int,
                    modules=None) -> ModelWeights:
    """``get(name)``: a native parameter by its state-dict name, or None where absent.
    ``modules``: the native module, whose norm modules (and RoPE tables) come along."""
    facts = _facts(cfg)
    H, G, dh = facts["n_heads"], facts["n_kv_heads"], facts["d_head"]
    kind = _base_kind(cfg.normalization_type)
    eps = float(getattr(cfg, "eps", 1e-5))

    def heads(w, n):  # [n * dh, d] -> [n, d, dh]
        return None if w is None else w.view(n, dh, w.shape[1]).transpose(1, 2)

    def bias(name, n=None):
        b = get(name)
        return None if b is None or n is None else b.view(n, dh)

    def norm(prefix: str, module, k: str | None = kind) -> Norm:
        if k is None:
            return Norm(None)
        return Norm(k, get(f"{prefix}.weight"), get(f"{prefix}.bias") if k == "LN" else None,
                    float(getattr(module, "eps", eps)), module)

    blocks = []
    gated = facts["gated_mlp"]
    for i in range(n_layers):
        p = f"layers.{i}"
        mod = modules.layers[i] if modules is not None else None
        o = get(f"{p}.attn.o.weight")  # [d, H * dh]
        has_mlp = get(f"{p}.mlp.{'out' if gated else 'fc_out'}.weight") is not None
        fc_in = get(f"{p}.mlp.{'in' if gated else 'fc_in'}.weight")
        fc_out = get(f"{p}.mlp.{'out' if gated else 'fc_out'}.weight")
        gate = get(f"{p}.mlp.gate.weight") if gated else None
        attn_scale, score_scale = _scales(cfg, i)
        blocks.append(BlockWeights(
            W_Q=heads(get(f"{p}.attn.q.weight"), H), W_K=heads(get(f"{p}.attn.k.weight"), G),
            W_V=heads(get(f"{p}.attn.v.weight"), G),
            W_O=None if o is None else o.T.reshape(H, dh, o.shape[0]),
            b_Q=bias(f"{p}.attn.q.bias", H), b_K=bias(f"{p}.attn.k.bias", G),
            b_V=bias(f"{p}.attn.v.bias", G), b_O=get(f"{p}.attn.o.bias"),
            ln1=norm(f"{p}.ln1", None if mod is None else mod.ln1),
            ln2=norm(f"{p}.ln2", None if mod is None else mod.ln2) if has_mlp else None,
            W_in=None if fc_in is None else fc_in.T, W_gate=None if gate is None else gate.T,
            W_out=None if fc_out is None else fc_out.T,
            b_in=get(f"{p}.mlp.fc_in.bias") if has_mlp and not gated else None,
            b_out=get(f"{p}.mlp.fc_out.bias") if has_mlp and not gated else None,
            attn_scale=attn_scale, score_scale=score_scale))
    final_kind = "RMS" if getattr(cfg, "final_rms", False) and kind else kind
    rotary = getattr(modules, "rotary", None) if modules is not None else None
    return ModelWeights(
        W_E=get("tok_embed.weight"), W_pos=get("pos.weight"), blocks=tuple(blocks),
        ln_final=norm("ln_out", None if modules is None else modules.ln_out, final_kind),
        W_U=None if get("head.weight") is None else get("head.weight").T, b_U=get("head.bias"),
        rotary=None if rotary is None else _native_rotary(rotary), **facts)


def _parameters(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """``named_parameters()`` as a dict, as the module holds them now (FSDP swaps the gathered
    ones in for a forward), without its generator machinery: the trainer calls this per step."""
    out = {prefix + k: v for k, v in module._parameters.items() if v is not None}
    for name, child in module._modules.items():
        if child is not None:
            out.update(_parameters(child, f"{prefix}{name}."))
    return out


def _is_native(model) -> bool:
    from transformer_lens.model_bridge.sources.native import NativeModel
    return isinstance(model, NativeModel)


def model_weights(model) -> ModelWeights:
    """TransformerLens-format weights of a ``TransformerBridge`` or of TransformerLens's native
    module (views of its parameters, so gradients reach them)."""
    if isinstance(model, ModelWeights):
        return model
    if _is_native(model):
        return _native_weights(_parameters(model).get, model.cfg, len(model.layers), model)
    if hasattr(model, "blocks") and hasattr(model, "cfg") and hasattr(model, "W_E"):
        return _bridge_weights(model)
    raise UserError(f"cannot read TransformerLens-format weights from a "
                    f"{type(model).__name__}; pass a TransformerBridge")


def state_dict_weights(state: Mapping[str, torch.Tensor], *, n_heads: int,
                       act_fn: str | None = "relu", normalization_type: str | None = None,
                       attention_dir: str = "causal") -> ModelWeights:
    """TransformerLens-format weights of a native checkpoint state dict (no module built);
    tensors a hand-made state leaves out are None.

    ``n_heads`` is not in the weights (``q`` is ``[n_heads * d_head, d_model]``); neither is
    the norm kind of parameter-free norms, so ``normalization_type`` is the caller's (a state
    with norm weights but ``None`` here is refused rather than read wrongly).
    """
    missing = [k for k in ("tok_embed.weight", "layers.0.attn.q.weight") if k not in state]
    if missing:
        raise UserError(f"state dict is not a TransformerLens native transformer: "
                        f"missing {missing}")
    norms = sorted(k for k in state if ".ln" in k or k.startswith("ln"))
    if norms and normalization_type is None:
        raise UserError(f"state dict has norm weights {norms[:3]} but no normalization type "
                        f"was given")
    hd = state["layers.0.attn.q.weight"].shape[0]
    if not isinstance(n_heads, int) or n_heads <= 0 or hd % n_heads:
        raise UserError(f"n_heads={n_heads!r} does not divide the attention width {hd}")
    d_head = hd // n_heads
    k = state.get("layers.0.attn.k.weight")
    n_kv = None if k is None else k.shape[0] // d_head
    n_layers = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("layers."))
    # the config facts a native state dict cannot state itself
    cfg = SimpleNamespace(n_heads=n_heads, d_head=d_head, act_fn=act_fn,
                          normalization_type=normalization_type, attention_dir=attention_dir,
                          n_key_value_heads=n_kv, attn_scale=-1.0,
                          positional_embedding_type="standard" if "pos.weight" in state
                          else "rotary")
    return _native_weights(state.get, cfg, n_layers)


__all__ = ["BlockWeights", "ModelWeights", "Norm", "Rotary", "linear_bias", "linear_weight",
           "model_weights", "state_dict_weights"]
