"""The disentangled-residual forward pass that Edge Pruning optimises, from TransformerLens weights.

Method (Bhaskar et al., NeurIPS 2024, §2; ``shared/reference/edge-pruning.md``): every writer's
output is kept separately, and a reader's input is ``Σ_w z_w·x_w + (1 − z_w)·x̃_w`` over its
upstream writers, with ``x̃`` the writer's output on the corrupted input (or zero, or a mean).
We compute it as ``resid + Σ_w (z_w − 1)·(x_w − x̃_w)`` where ``resid = Σ_w x_w`` is the running
residual of the masked run: one matrix product per layer for all its readers (``[readers,
writers] @ [writers, batch·seq·d_model]``), and with every mask at 1 the reader input is exactly
the ordinary residual, which makes the all-ones check tight.

Weights come from a ``TransformerBridge`` in TransformerLens layout (``W_Q [L, H, d, d_head]``
…), so the same code serves the in-house native models and Hugging Face GPT-2/Llama-style models:
LayerNorm / RMSNorm / no norm, GELU / ReLU / SiLU and gated MLPs, learned or rotary positions,
grouped-query attention. Attention output biases ``b_O`` are per layer, not per head, so they
are treated as constants present in both runs (never masked). Unsupported features (parallel
attention+MLP, soft caps) raise ``UserError``; :meth:`MaskedModel.verify` compares against the
bridge's own logits and is run before every search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from circuits.graph import Graph, GraphSpec
from workbench.errors import UserError

_ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "swish": F.silu,
         "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
         "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
         "gelu_fast": lambda x: F.gelu(x, approximate="tanh")}


def _opt(obj, name):
    """Tensor attribute ``name`` of a bridge component, or None where the architecture lacks it.

    Which exception a TransformerBridge weight property raises for a component the
    architecture does not have depends on the adapter, so every exception listed below means
    "absent" here. A wrong guess does not pass silently: :meth:`MaskedModel.verify` compares the
    masked forward with the bridge's own logits before any search."""
    try:
        value = getattr(obj, name)
    except (AttributeError, TypeError, NotImplementedError, RuntimeError, ValueError):
        return None
    return value if isinstance(value, torch.Tensor) else None


@dataclass
class _Norm:
    kind: str | None  # "LN", "RMS" or None; "LNPre"/"RMSPre" are LN/RMS without weights
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind is None:
            return x
        dtype = x.dtype
        if self.kind == "LN":
            x = x - x.mean(-1, keepdim=True)
        x32 = x.float()
        x = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(dtype)
        if self.weight is not None:
            x = x * self.weight
        if self.bias is not None:
            x = x + self.bias
        return x


def _norm_from(component, kind: str | None, default_eps: float) -> _Norm:
    if kind is None:
        return _Norm(None, None, None, 0.0)
    orig = getattr(component, "_original_component", component)
    eps = getattr(orig, "eps", None) or getattr(orig, "variance_epsilon", None) or default_eps
    base = "LN" if kind.startswith("LN") else "RMS"
    w = _opt(orig, "weight")
    b = _opt(orig, "bias") if base == "LN" else None
    return _Norm(base, None if w is None else w.detach(), None if b is None else b.detach(),
                 float(eps))


class MaskedModel(torch.nn.Module):
    """A frozen model evaluated with edge masks. ``graph`` lists its writers and readers."""

    def __init__(self, bridge, *, dtype: torch.dtype | None = None):
        super().__init__()
        cfg = bridge.cfg
        self.cfg = cfg
        for flag in ("parallel_attn_mlp",):
            if getattr(cfg, flag, False):
                raise UserError(f"masked forward does not support {flag} models")
        for cap in ("attn_scores_soft_cap", "output_logits_soft_cap"):
            if float(getattr(cfg, cap, -1.0) or -1.0) > 0:
                raise UserError(f"masked forward does not support {cap}")
        self.graph = Graph(GraphSpec.from_cfg(cfg))
        spec = self.graph.spec
        L, H, G = spec.n_layers, spec.n_heads, spec.n_kv_heads
        self.n_layers, self.n_heads, self.n_kv, self.d_head = L, H, G, cfg.d_head
        ref = bridge.W_E
        self.dtype = dtype or ref.dtype
        to = lambda t: None if t is None else t.detach().to(self.dtype)  # noqa: E731
        zeros = lambda *s: torch.zeros(*s, dtype=self.dtype, device=ref.device)  # noqa: E731

        self.W_E = to(bridge.W_E)
        self.W_pos = to(_opt(bridge, "W_pos")) if spec.separate_pos else None
        blocks = bridge.blocks
        # cloned: norm weights are folded into these in place, never into the bridge's tensors
        self.W_Q = to(bridge.W_Q).clone()  # [L, H, d_model, d_head]
        self.W_K = to(bridge.W_K).clone()  # [L, G, d_model, d_head]
        self.W_V = to(bridge.W_V).clone()
        self.W_O = to(bridge.W_O)  # [L, H, d_head, d_model]
        assert self.W_K.shape[1] == G, (self.W_K.shape, G)
        d, dh = cfg.d_model, cfg.d_head
        self.b_Q = torch.stack([to(_opt(b.attn, "b_Q")) if _opt(b.attn, "b_Q") is not None
                                else zeros(H, dh) for b in blocks])
        self.b_K = torch.stack([to(_opt(b.attn, "b_K")) if _opt(b.attn, "b_K") is not None
                                else zeros(G, dh) for b in blocks])
        self.b_V = torch.stack([to(_opt(b.attn, "b_V")) if _opt(b.attn, "b_V") is not None
                                else zeros(G, dh) for b in blocks])
        self.b_O = torch.stack([to(_opt(b.attn, "b_O")) if _opt(b.attn, "b_O") is not None
                                else zeros(d) for b in blocks])
        kind = cfg.normalization_type
        eps = float(getattr(cfg, "eps", 1e-5))
        self.ln1 = [_norm_from(b.ln1, kind, eps) for b in blocks]
        self.has_mlp = spec.has_mlp
        if self.has_mlp:
            self.ln2 = [_norm_from(b.ln2, kind, eps) for b in blocks]
            self.W_in = [to(_opt(b.mlp, "W_in")) for b in blocks]  # [d_model, d_mlp]
            self.W_gate = [to(_opt(b.mlp, "W_gate")) for b in blocks]
            self.W_out = [to(_opt(b.mlp, "W_out")) for b in blocks]  # [d_mlp, d_model]
            self.b_in = [to(_opt(b.mlp, "b_in")) for b in blocks]
            self.b_out = [to(_opt(b.mlp, "b_out")) for b in blocks]
            if any(w is None for w in self.W_in + self.W_out):
                raise UserError("masked forward needs dense MLP weights (W_in, W_out)")
            act = (cfg.act_fn or "gelu").lower()
            if act not in _ACTS:
                raise UserError(f"masked forward does not support act_fn {act!r}")
            self.act = _ACTS[act]
        final_kind = "RMS" if getattr(cfg, "final_rms", False) and kind else kind
        self.ln_f = _norm_from(bridge.ln_final, final_kind, eps)
        self.W_U = to(bridge.W_U)  # [d_model, d_vocab_out]
        self.b_U = to(_opt(bridge, "b_U"))
        self._fold_norm_weights()
        self.scales = [self._attn_scale(cfg, b, i) for i, b in enumerate(blocks)]
        self.causal = getattr(cfg, "attention_dir", "causal") == "causal"
        self._rope = self._rotary(bridge) if not spec.separate_pos else None

    # -- model pieces -----------------------------------------------------------------------
    def _fold_norm_weights(self) -> None:
        """Fold each norm's scale and bias into the projection it feeds (exact algebra).

        Every Q/K/V reader normalises its own input, so the norm runs on H + 2·H_kv tensors per
        layer; folding removes two elementwise passes over all of them (and their backward).
        """
        def fold(norm: _Norm, weight: torch.Tensor, bias: torch.Tensor | None, d_axis: int):
            if norm.kind is None:
                return weight, bias
            w = norm.weight if norm.weight is not None else None
            b = norm.bias
            if b is not None:  # bias enters before the projection: b @ W
                shift = torch.tensordot(b, weight, dims=([0], [d_axis]))
                bias = shift if bias is None else bias + shift
            if w is not None:
                shape = [1] * weight.dim()
                shape[d_axis] = -1
                weight = weight * w.view(shape)
            norm.weight, norm.bias = None, None
            return weight, bias

        for layer, ln in enumerate(self.ln1):
            w_, b_ = ln.weight, ln.bias
            for name in ("Q", "K", "V"):
                ln.weight, ln.bias = w_, b_
                W, B = fold(ln, getattr(self, f"W_{name}")[layer], getattr(self, f"b_{name}")[layer],
                            1)
                getattr(self, f"W_{name}")[layer] = W
                getattr(self, f"b_{name}")[layer] = B
        if self.has_mlp:
            for layer, ln in enumerate(self.ln2):
                w_, b_ = ln.weight, ln.bias
                if self.W_gate[layer] is not None:
                    self.W_gate[layer], extra = fold(ln, self.W_gate[layer], None, 0)
                    if extra is not None:  # a gate bias: keep it as a separate term
                        self._gate_bias = getattr(self, "_gate_bias", {})
                        self._gate_bias[layer] = extra
                    ln.weight, ln.bias = w_, b_
                self.W_in[layer], self.b_in[layer] = fold(ln, self.W_in[layer],
                                                          self.b_in[layer], 0)
        self.W_U, self.b_U = fold(self.ln_f, self.W_U, self.b_U, 0)

    @staticmethod
    def _attn_scale(cfg, block, layer: int) -> float:
        hf_scaling = getattr(getattr(block.attn, "_original_component", None), "scaling", None)
        if isinstance(hf_scaling, float):
            return hf_scaling
        if getattr(cfg, "use_attn_scale", True) and float(cfg.attn_scale) > 0:
            scale = 1.0 / float(cfg.attn_scale)
        else:
            scale = 1.0 / math.sqrt(cfg.d_head)
        if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
            scale /= layer + 1
        return scale

    def _rotary(self, bridge):
        """``(cos, sin, rotate)`` builder for the source's RoPE convention."""
        native = getattr(getattr(bridge, "original_model", None), "rotary", None)
        if native is not None:  # TL-native: adjacent-pair rotation, precomputed tables
            def rotate(x):
                return torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)

            def tables(seq, device):
                return native.cos_cached[:seq].to(self.dtype), \
                    native.sin_cached[:seq].to(self.dtype), rotate
            return tables
        rot = getattr(bridge, "rotary_emb", None)
        if rot is None:
            raise UserError("rotary model without a rotary embedding module is not supported")
        hf = getattr(rot, "_original_component", rot)

        def rotate_half(x):
            half = x.shape[-1] // 2
            return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

        def tables(seq, device):
            probe = torch.zeros(1, seq, self.d_head, dtype=self.dtype, device=device)
            cos, sin = hf(probe, torch.arange(seq, device=device)[None])
            return cos[0].to(self.dtype), sin[0].to(self.dtype), rotate_half
        return tables

    def _apply_rope(self, x: torch.Tensor, rope) -> torch.Tensor:
        cos, sin, rotate = rope  # cos: [seq, rotary_dim]
        rd = cos.shape[-1]
        if rd == x.shape[-1]:
            return x * cos + rotate(x) * sin
        xr, xp = x[..., :rd], x[..., rd:]
        return torch.cat([xr * cos + rotate(xr) * sin, xp], dim=-1)

    def _mlp(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.W_in[layer]
        if self.b_in[layer] is not None:
            h = h + self.b_in[layer]
        if self.W_gate[layer] is not None:
            gate = x @ self.W_gate[layer]
            if layer in getattr(self, "_gate_bias", {}):
                gate = gate + self._gate_bias[layer]
            h = self.act(gate) * h
        else:
            h = self.act(h)
        out = h @ self.W_out[layer]
        return out if self.b_out[layer] is None else out + self.b_out[layer]

    def _unembed(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.ln_f(x) @ self.W_U
        return logits if self.b_U is None else logits + self.b_U

    # -- forward ----------------------------------------------------------------------------
    def embed(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Embedding writer outputs, each ``[batch, seq, d_model]``."""
        out = [self.W_E[tokens]]
        if self.W_pos is not None:
            seq = tokens.shape[1]
            out.append(self.W_pos[:seq][None].expand(tokens.shape[0], -1, -1))
        return out

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None, *,
                edges: torch.Tensor | None = None, nodes: torch.Tensor | None = None,
                ablated: torch.Tensor | None = None, return_writers: bool = False,
                checkpoint: bool = False):
        """Logits at ``positions`` (``[batch]``, one per example; all positions when None).

        ``edges``: ``[n_readers, n_writers]`` mask values (only entries where
        ``graph.edge_mask`` is true are read); ``nodes``: ``[n_writers]`` writer masks;
        ``ablated``: ``[n_writers, batch or 1, seq, d_model]`` writer outputs used where a mask
        is below 1. With ``edges`` None the ordinary forward runs (and ``return_writers`` also
        returns every writer's output, for caching corrupted activations).
        """
        g = self.graph
        batch, seq = tokens.shape
        masked = edges is not None or nodes is not None
        if masked and ablated is None:
            raise ValueError("masked forward needs ablated writer outputs")
        zm1 = None if edges is None else (edges.to(self.dtype) - 1)  # [readers, writers]
        rope = None if self._rope is None else self._rope(seq, tokens.device)

        writers: list[torch.Tensor] = []  # effective outputs, each [k, batch, seq, d_model]
        deltas: list[torch.Tensor] = []  # effective (x - x_ablated), same shapes
        resid = None

        def add_writers(out: torch.Tensor, start: int) -> None:
            nonlocal resid
            if masked:
                abl = ablated[start:start + out.shape[0]]
                delta = out - abl
                if nodes is not None:
                    delta = delta * nodes[start:start + out.shape[0]].to(self.dtype)[
                        :, None, None, None]
                    out = abl + delta
                deltas.append(delta)
            writers.append(out)
            s = out.sum(0)
            resid = s if resid is None else resid + s

        def reader_inputs(rows: slice, upto: int, count: int) -> torch.Tensor:
            """``[count, batch, seq, d_model]`` inputs of readers ``rows``."""
            if zm1 is None:
                return resid[None].expand(count, -1, -1, -1)
            d = torch.cat(deltas, 0)[:upto].reshape(upto, -1)  # [upto, batch*seq*d_model]
            mix = (zm1[rows, :upto] @ d).view(count, batch, seq, -1)
            return resid[None] + mix

        add_writers(torch.stack(self.embed(tokens)), 0)
        H, G = self.n_heads, self.n_kv
        for layer in range(self.n_layers):
            r0 = g.attn_reader_offset(layer)
            upto = g.attn_upto(layer)
            fn = self._attn_layer
            args = (layer, reader_inputs(slice(r0, r0 + H + 2 * G), upto, H + 2 * G), rope)
            if checkpoint and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint as ckpt
                heads = ckpt(fn, *args, use_reentrant=False)
            else:
                heads = fn(*args)  # [H, batch, seq, d_model]
            add_writers(heads, upto)
            resid = resid + self.b_O[layer]
            if self.has_mlp:
                mupto = g.mlp_upto(layer)
                r = g.mlp_reader(layer)
                x = reader_inputs(slice(r, r + 1), mupto, 1)[0]
                add_writers(self._mlp(layer, self.ln2[layer](x))[None], mupto)

        if positions is None:
            final = reader_inputs(slice(g.final_reader, g.final_reader + 1), g.final_upto(), 1)[0]
        else:
            idx = torch.arange(batch, device=tokens.device)
            final = resid[idx, positions]  # [batch, d_model]
            if zm1 is not None:
                d = torch.cat(deltas, 0)[:, idx, positions]  # [writers, batch, d_model]
                final = final + torch.einsum("w,wbd->bd", zm1[g.final_reader], d)
        logits = self._unembed(final)
        if return_writers:
            return logits, torch.cat(writers, 0)
        return logits

    def _attn_layer(self, layer: int, inp: torch.Tensor, rope) -> torch.Tensor:
        """Head outputs ``[H, batch, seq, d_model]`` from Q/K/V reader inputs ``inp``."""
        H, G = self.n_heads, self.n_kv
        _, batch, seq, d = inp.shape
        ln = self.ln1[layer]
        if inp.stride(0) == 0:  # unmasked: every reader sees the same residual; norm it once
            normed = ln(inp[0])[None]
            qn, kn, vn = normed.expand(H, -1, -1, -1), normed.expand(G, -1, -1, -1), \
                normed.expand(G, -1, -1, -1)
        else:
            normed = ln(inp)
            qn, kn, vn = normed[:H], normed[H:H + G], normed[H + G:]
        q = torch.matmul(qn.reshape(H, -1, d), self.W_Q[layer]).view(H, batch, seq, -1)
        k = torch.matmul(kn.reshape(G, -1, d), self.W_K[layer]).view(G, batch, seq, -1)
        v = torch.matmul(vn.reshape(G, -1, d), self.W_V[layer]).view(G, batch, seq, -1)
        q = q + self.b_Q[layer][:, None, None]
        k = k + self.b_K[layer][:, None, None]
        v = v + self.b_V[layer][:, None, None]
        if rope is not None:
            q, k = self._apply_rope(q, rope), self._apply_rope(k, rope)
        if G != H:
            k = k.repeat_interleave(H // G, dim=0)
            v = v.repeat_interleave(H // G, dim=0)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           scale=self.scales[layer])  # [H, batch, seq, d_head]
        out = torch.matmul(z.reshape(H, batch * seq, -1), self.W_O[layer])
        return out.view(H, batch, seq, d)

    # -- helpers ----------------------------------------------------------------------------
    @torch.no_grad()
    def writer_outputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every writer's output on ``tokens``: ``[n_writers, batch, seq, d_model]``."""
        return self.forward(tokens, return_writers=True)[1]

    @torch.no_grad()
    def verify(self, bridge, tokens: torch.Tensor, atol: float = 1e-3) -> float:
        """Max |logit difference| between the all-ones masked forward and the bridge.

        Raises ``UserError`` above ``atol``: the architecture is not one this forward models.
        """
        ref = bridge(tokens)
        if isinstance(ref, tuple):
            ref = ref[0]
        ref = getattr(ref, "logits", ref).to(self.dtype)
        ones = self.graph.edge_mask.to(self.dtype)
        abl = torch.zeros(len(self.graph.writers), 1, 1, 1, dtype=self.dtype)
        ours = self.forward(tokens, edges=ones, ablated=abl)
        err = float((ours - ref).abs().max())
        scale = float(ref.abs().max()) + 1.0
        if not err <= atol * scale:
            raise UserError(f"masked forward does not reproduce this model's logits "
                            f"(max error {err:.3g}); architecture not supported")
        return err
