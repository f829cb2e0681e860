"""The disentangled-residual forward pass that Edge Pruning optimises, from TransformerLens weights.

Method (Bhaskar et al., NeurIPS 2024, §2; ``shared/reference/edge-pruning.md``): every writer's
output is kept separately, and a reader's input is ``Σ_w z_w·x_w + (1 − z_w)·x̃_w`` over its
upstream writers, with ``x̃`` the writer's output on the corrupted input (or zero, or a mean).
We compute it as ``resid + Σ_w (z_w − 1)·(x_w − x̃_w)`` where ``resid = Σ_w x_w`` is the running
residual of the masked run: one matrix product per layer for all its readers (``[readers,
writers] @ [writers, batch·seq·d_model]``), and with every mask at 1 the reader input is exactly
the ordinary residual, which makes the all-ones check tight.

Weights come from a ``TransformerBridge`` in TransformerLens layout (``W_Q [L, H, d, d_head]``
…, read by :func:`workbench.weights.model_weights`), so the same code serves the in-house native models and Hugging Face GPT-2/Llama-style models:
LayerNorm / RMSNorm / no norm, GELU / ReLU / SiLU and gated MLPs, learned or rotary positions,
grouped-query attention. Attention output biases ``b_O`` are per layer, not per head, so they
are treated as constants present in both runs (never masked). Unsupported features (parallel
attention+MLP, soft caps) raise ``UserError``; :meth:`MaskedModel.verify` compares against the
bridge's own logits and is run before every search.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from circuits.graph import Graph, GraphSpec
from workbench.activations import activation
from workbench.errors import UserError
from workbench.weights import Norm, model_weights

class MaskedModel(torch.nn.Module):
    """A frozen model evaluated with edge masks. ``graph`` lists its writers and readers."""

    def __init__(self, bridge, *, dtype: torch.dtype | None = None):
        super().__init__()
        cfg = bridge.cfg
        self.cfg = cfg
        w = model_weights(bridge)
        if w.parallel_attn_mlp:
            raise UserError("masked forward does not support parallel_attn_mlp models")
        for cap in ("attn_scores_soft_cap", "output_logits_soft_cap"):
            if getattr(w, cap) > 0:
                raise UserError(f"masked forward does not support {cap}")
        self.graph = Graph(GraphSpec.from_cfg(cfg))
        spec = self.graph.spec
        L, H, G = spec.n_layers, spec.n_heads, spec.n_kv_heads
        self.n_layers, self.n_heads, self.n_kv, self.d_head = L, H, G, cfg.d_head
        ref = w.W_E
        self.dtype = dtype or ref.dtype
        to = lambda t: None if t is None else t.detach().to(self.dtype)  # noqa: E731
        zeros = lambda *s: torch.zeros(*s, dtype=self.dtype, device=ref.device)  # noqa: E731

        self.W_E = to(w.W_E)
        self.W_pos = to(w.W_pos) if spec.separate_pos else None
        blocks = w.blocks
        # cloned: norm weights are folded into these in place, never into the model's tensors
        self.W_Q = to(w.stacked("W_Q")).clone()  # [L, H, d_model, d_head]
        self.W_K = to(w.stacked("W_K")).clone()  # [L, G, d_model, d_head]
        self.W_V = to(w.stacked("W_V")).clone()
        self.W_O = to(w.stacked("W_O"))  # [L, H, d_head, d_model]
        assert self.W_K.shape[1] == G, (self.W_K.shape, G)
        d, dh = cfg.d_model, cfg.d_head
        self.b_Q = torch.stack([to(b.b_Q) if b.b_Q is not None else zeros(H, dh) for b in blocks])
        self.b_K = torch.stack([to(b.b_K) if b.b_K is not None else zeros(G, dh) for b in blocks])
        self.b_V = torch.stack([to(b.b_V) if b.b_V is not None else zeros(G, dh) for b in blocks])
        self.b_O = torch.stack([to(b.b_O) if b.b_O is not None else zeros(d) for b in blocks])
        self.ln1 = [b.ln1 for b in blocks]
        self.has_mlp = spec.has_mlp
        if self.has_mlp:
            self.ln2 = [b.ln2 for b in blocks]
            self.W_in = [to(b.W_in) for b in blocks]  # [d_model, d_mlp]
            self.W_gate = [to(b.W_gate) for b in blocks]
            self.W_out = [to(b.W_out) for b in blocks]  # [d_mlp, d_model]
            self.b_in = [to(b.b_in) for b in blocks]
            self.b_out = [to(b.b_out) for b in blocks]
            if any(m is None for m in self.W_in + self.W_out):
                raise UserError("masked forward needs dense MLP weights (W_in, W_out)")
            self.act = activation(w.act_fn or "gelu", "masked forward act_fn")
        self.ln_f = w.ln_final
        self.W_U = to(w.W_U)  # [d_model, d_vocab_out]
        self.b_U = to(w.b_U)
        self._fold_norm_weights()
        self.scales = [b.score_scale for b in blocks]
        self.causal = w.causal
        if not spec.separate_pos and w.rotary is None:
            raise UserError("rotary model without a rotary embedding module is not supported")
        self._rope = w.rotary if not spec.separate_pos else None

    # -- model pieces -----------------------------------------------------------------------
    def _fold_norm_weights(self) -> None:
        """Fold each norm's scale and bias into the projection it feeds (exact algebra); the
        norms keep only their normalisation.

        Every Q/K/V reader normalises its own input, so the norm runs on H + 2·H_kv tensors per
        layer; folding removes two elementwise passes over all of them (and their backward).
        """
        def fold(norm: Norm, weight: torch.Tensor, bias: torch.Tensor | None, d_axis: int):
            if norm.kind is None:
                return weight, bias
            if norm.bias is not None:  # bias enters before the projection: b @ W
                shift = torch.tensordot(norm.bias, weight, dims=([0], [d_axis]))
                bias = shift if bias is None else bias + shift
            if norm.weight is not None:
                shape = [1] * weight.dim()
                shape[d_axis] = -1
                weight = weight * norm.weight.view(shape)
            return weight, bias

        def bare(norm: Norm) -> Norm:
            return replace(norm, weight=None, bias=None, module=None)

        for layer, ln in enumerate(self.ln1):
            for name in ("Q", "K", "V"):
                W, B = fold(ln, getattr(self, f"W_{name}")[layer], getattr(self, f"b_{name}")[layer],
                            1)
                getattr(self, f"W_{name}")[layer] = W
                getattr(self, f"b_{name}")[layer] = B
            self.ln1[layer] = bare(ln)
        if self.has_mlp:
            for layer, ln in enumerate(self.ln2):
                if self.W_gate[layer] is not None:
                    self.W_gate[layer], extra = fold(ln, self.W_gate[layer], None, 0)
                    if extra is not None:  # a gate bias: keep it as a separate term
                        self._gate_bias = getattr(self, "_gate_bias", {})
                        self._gate_bias[layer] = extra
                self.W_in[layer], self.b_in[layer] = fold(ln, self.W_in[layer],
                                                          self.b_in[layer], 0)
                self.ln2[layer] = bare(ln)
        self.W_U, self.b_U = fold(self.ln_f, self.W_U, self.b_U, 0)
        self.ln_f = bare(self.ln_f)

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
        rope = None if self._rope is None else self._rope.tables(seq, tokens.device, self.dtype)

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
