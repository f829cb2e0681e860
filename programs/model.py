"""The Transformer Program model (Friedman et al., 2023): relaxed for training, argmax after.

The residual stream is a list of named variables, never summed into: categorical variables are
distributions over ``k`` values (one-hot once discrete) kept as ``[batch, pos, n_vars, k]``,
numerical variables are scalars ``[batch, pos, n_vars]``. Initial variables: ``tokens`` and
``positions`` (frozen one-hots) and ``ones``. Every module input picks one variable through
Gumbel-softmaxed logits; every module writes a new variable.

Relaxation (ours; the discrete model in :mod:`programs.discrete` is the reference semantics):
a categorical head scores key j for query i as ``S = q P k^T`` (``P`` the row-wise
Gumbel-softmaxed predicate; with ``relative_predicate`` each row divided by its maximum), replaces
the BOS column by ``0.5 + 0.5 S`` (BOS wins only when nothing else matches or by rank), subtracts a
small bias proportional to the runtime rank (closest first, self last) and takes a softmax at
``attn_scale`` (with ``sharpen_attention``, times ``1 / tau`` once the temperature is below 1, so
the relaxation converges to the hard rule; a fixed scale lets training average over matches,
which the argmax model cannot). With one-hot inputs and an infinite scale this is exactly the hard
rule. ``attention_relaxation="gumbel_log"`` is the original code's instead: a Gumbel-softmax at the
annealed temperature over ``(log S + rank bias) / sqrt(k)``, nearly uniform while hot. Padding
positions are never keys. A numerical head outputs ``sum_j S_ij`` (the count of matches, RASP
selector width), or with ``num_head_values`` ``sum_j S_ij v_j`` over a numerical
variable ``v`` it reads. MLPs read two variables (one-hots concatenated, or two numbers through
triangular "tent" features that are one-hot on integers -- with ``num_mlp_features="linear"``
the two numbers themselves), one ReLU layer, ``k`` logits, Gumbel-softmaxed into a new
categorical variable. All reads of a layer are one matmul; tensors are batch-last (see
:mod:`programs.kernels`) because the per-sequence products are tiny.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from programs.config import ProgramConfig
from programs.data import ProgramShape
from programs.discrete import CatHead, DiscreteProgram, MLPTable, NumHead, rank_matrix
from programs.kernels import gather, mlp, pair_scores

RANK_WEIGHT = 0.3  # total rank bias stays below the 0.5 gap between a match and the BOS default


def variable_names(cfg: ProgramConfig) -> tuple[list[str], list[str]]:
    """Names of every categorical and numerical variable, in residual order."""
    cat, num = ["tokens", "positions"], ["ones"]
    for layer in range(cfg.n_layers):
        cat += [f"attn_{layer}_{h}" for h in range(cfg.n_cat_heads)]
        num += [f"num_attn_{layer}_{h}" for h in range(cfg.n_num_heads)]
        cat += [f"mlp_{layer}_{m}" for m in range(cfg.n_cat_mlps)]
        cat += [f"num_mlp_{layer}_{m}" for m in range(cfg.n_num_mlps)]
    return cat, num


def _read(weights: torch.Tensor, chunks: list) -> torch.Tensor:
    """``weights [r, v] @ variables [v, k, n, b] -> [r, k n b]`` over chunked variables.

    ``weights [r, v k]`` (one weight per variable and value, the unembedding) gives ``[r, n b]``.

    One concatenation and one matmul: cheaper than a matmul per chunk accumulated with
    ``addmm`` (each of which rewrites the whole ``[r, k n b]`` output), and the backward of the
    concatenation is free (views of the gradient).
    """
    stream = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 0)  # [v, k, n, b]
    return weights @ stream.view(weights.shape[-1], -1)


def _interleave(read: torch.Tensor) -> torch.Tensor:
    """Read rows ``[first inputs..., second inputs...]`` -> ``[m0 first, m0 second, m1 ...]``.

    The read then lands as ``[m, 2, ...]``, the layout the batched MLP takes, without a copy.
    """
    return read.view(2, -1, read.shape[-1]).transpose(0, 1).reshape(read.shape)


def tents(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``[m, 2, N]`` scalars -> ``[m, 2 C, N]`` features ``relu(1 - |x - c|)`` per centre."""
    m, two, N = x.shape
    return torch.relu(1 - (x[:, :, None, :] - centres).abs()).reshape(m, two * len(centres), N)


def _gumbel_softmax(logits: torch.Tensor, tau: float, dim: int) -> torch.Tensor:
    # -log(-log U) from uniform draws: several times faster on CPU than exponential_().
    # The noise needs no gradient, so it is transformed in place (no temporaries).
    u = torch.rand_like(logits).clamp_(1e-10, 1.0)
    noise = u.log_().neg_().log_()  # -(Gumbel noise)
    return torch.softmax((logits - noise).div_(tau), dim=dim)


def _gumbel_dim1(logits: torch.Tensor, tau: float, hard: bool) -> torch.Tensor:
    if hard:
        return F.one_hot(logits.argmax(1), logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    return _gumbel_softmax(logits, tau, 1)


def _gumbel(logits: torch.Tensor, tau: float, hard: bool) -> torch.Tensor:
    if hard:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return _gumbel_softmax(logits, tau, -1)


class ProgramLayer(nn.Module):
    def __init__(self, cfg: ProgramConfig, k: int, n_ctx: int, n_cat_in: int, n_num_in: int):
        super().__init__()
        hc, hn, mc, mn, d = (cfg.n_cat_heads, cfg.n_num_heads, cfg.n_cat_mlps, cfg.n_num_mlps,
                             cfg.d_mlp)
        self.hc, self.hn, self.mc, self.mn = hc, hn, mc, mn
        init = 0.5
        # Read rows: queries of all heads (categorical first), keys, then values of cat heads.
        self.head_read = nn.Parameter(torch.randn(3 * hc + 2 * hn, n_cat_in) * init)
        self.predicate = nn.Parameter(torch.randn(hc + hn, k, k) * init)  # [head, q, k]
        n_cat_mid = n_cat_in + hc
        self.mlp_read = nn.Parameter(torch.randn(2 * mc, n_cat_mid) * init)
        # MLP weights as [mlp, out, in], biases [mlp, out, 1] (batch-last layout).
        self.mlp_w1 = nn.Parameter(torch.randn(mc, d, 2 * k) / (2 * k) ** 0.5)
        self.mlp_b1 = nn.Parameter(torch.zeros(mc, d, 1))
        self.mlp_w2 = nn.Parameter(torch.randn(mc, k, d) / d ** 0.5)
        self.mlp_b2 = nn.Parameter(torch.zeros(mc, k, 1))
        # value reads of the numerical heads (without them every head counts with ``ones``)
        self.num_value_read = (nn.Parameter(torch.randn(hn, n_num_in) * init)
                               if cfg.num_head_values and hn else None)
        n_num_mid = n_num_in + hn
        self.num_read = nn.Parameter(torch.randn(2 * mn, n_num_mid) * init)
        # Numerical inputs enter through triangular "tent" features centred on 0..n_ctx:
        # one-hot on integer counts (so the discrete MLP is a plain table), smooth in between.
        n_feat = 2 * (n_ctx + 1) if cfg.num_mlp_features == "tents" else 2
        self.num_w1 = nn.Parameter(torch.randn(mn, d, n_feat) / n_feat ** 0.5)
        self.num_b1 = nn.Parameter(torch.zeros(mn, d, 1))
        self.num_w2 = nn.Parameter(torch.randn(mn, k, d) / d ** 0.5)
        self.num_b2 = nn.Parameter(torch.zeros(mn, k, 1))


class ProgramModel(nn.Module):
    """A relaxed Transformer Program; :meth:`discretize` gives the argmax program."""

    def __init__(self, cfg: ProgramConfig, shape: ProgramShape):
        super().__init__()
        self.cfg, self.shape = cfg, shape
        k = shape.width
        self.cat_names, self.num_names = variable_names(cfg)
        per_layer_cat = cfg.n_cat_heads + cfg.n_cat_mlps + cfg.n_num_mlps
        self.layers = nn.ModuleList(
            ProgramLayer(cfg, k, shape.n_ctx, 2 + layer * per_layer_cat, 1 + layer * cfg.n_num_heads)
            for layer in range(cfg.n_layers))
        d_out = len(shape.output_vocab)
        self.unembed_cat = nn.Parameter(torch.randn(len(self.cat_names), k, d_out) * 0.1)
        self.unembed_num = nn.Parameter(torch.randn(len(self.num_names), d_out) * 0.1)
        self.unembed_bias = nn.Parameter(torch.zeros(d_out))
        n = shape.n_ctx
        ranks = rank_matrix(n).float()
        bias = -RANK_WEIGHT * ranks / ranks.max()  # [query, key]
        allowed = torch.ones(n, n, dtype=torch.bool)
        if cfg.causal:
            allowed = allowed.tril()
        bias = bias.masked_fill(~allowed, float("-inf"))
        self.register_buffer("rank_bias", bias[:, :, None], persistent=False)  # [i, j, 1]
        bos_scale = torch.ones(n)
        bos_scale[0] = 0.5
        self.register_buffer("bos_scale", bos_scale[:, None], persistent=False)  # [j, 1]
        self.register_buffer("eye", torch.eye(k), persistent=False)
        self.register_buffer("centres", torch.arange(n + 1.0)[:, None], persistent=False)

    def forward(self, tokens: torch.Tensor, tau: float, hard: bool = False) -> torch.Tensor:
        """Relaxed logits ``[batch, pos, d_out]`` (``hard``: argmax everywhere, no noise).

        The exact discrete model is :meth:`discretize`; ``hard=True`` here is its float twin,
        useful for checking that the relaxation converges to it.
        """
        return self.forward_flat(tokens, tau, hard).view(-1, tokens.shape[1],
                                                         tokens.shape[0]).permute(2, 1, 0)

    def forward_flat(self, tokens: torch.Tensor, tau: float, hard: bool = False) -> torch.Tensor:
        """Logits ``[d_out, pos * batch]`` (position-major, batch innermost)."""
        b, n = tokens.shape
        k = self.shape.width
        # Batch-last layout: variables first, then value, position, batch. Reads, predicates and
        # MLPs are single large matmuls; the per-sequence attention products broadcast over a
        # contiguous batch axis (much faster than thousands of tiny bmm calls on a CPU).
        tok = self.eye[tokens.T].permute(2, 0, 1)  # [k, n, b]
        pos = self.eye[:n].T[:, :, None].expand(k, n, b)
        # Categorical variables stay a list of per-module chunks [v, k, n, b], concatenated only
        # when a read needs them (twice per layer), not after every module.
        cats = [torch.stack([tok, pos])]
        num = torch.ones(1, n, b)  # [v, n, b]
        pad = self.shape.pad_id
        # padding positions are never keys: their key one-hots are zeroed, so they match
        # nothing (the discrete rule; without it counts of PAD leak the length, a shortcut
        # that traps hist-like tasks far from the counting solution)
        pad_keys = None if pad is None else (tokens.T != pad).float()  # [n, b], 0 at padding
        for layer in self.layers:
            num = self._layer(layer, cats, num, tau, hard, pad_keys)
        # unembedding: one weight per (variable, value) row of the stream
        w = self.unembed_cat.reshape(-1, self.unembed_cat.shape[-1]).T  # [o, v k]
        out = _read(w, cats).view(w.shape[0], n * b)  # [o, n b]
        out = torch.addmm(out, self.unembed_num.T, num.view(num.shape[0], -1))
        return out + self.unembed_bias[:, None]

    def _layer(self, lyr: ProgramLayer, cats: list, num, tau: float, hard: bool,
               pad_keys: torch.Tensor | None):
        """Append this layer's categorical outputs to ``cats``; return the numerical stream."""
        _, k, n, b = cats[0].shape
        hc, hn = lyr.hc, lyr.hn
        heads = hc + hn
        if heads:
            read = _gumbel(lyr.head_read, tau, hard)  # [reads, v]
            x = _read(read, cats).view(-1, k, n, b)  # [reads, k, n, b]
            # split (not slicing): its backward is one concatenation, not zero-fill + add per part
            q, key, val = x.split([heads, heads, hc])
            if pad_keys is not None:  # a padding position's key matches nothing
                key = key * pad_keys
            pred = _gumbel(lyr.predicate, tau, hard)  # [heads, q value, k value]
            rel_c = self.cfg.relative_predicate and hc
            rel_n = self.cfg.relative_count_predicate and hn
            if (rel_c or rel_n) and not hard:
                # categorical heads: the query's preferred key value scores 1, else a soft
                # predicate (all ~1/k) loses every query to the BOS default (0.5) until it
                # hardens. Counting heads have no default and by default keep soft counts.
                pc, pn = pred.split([hc, hn])
                pred = torch.cat([pc / pc.amax(-1, keepdim=True) if rel_c else pc,
                                  pn / pn.amax(-1, keepdim=True) if rel_n else pn])
            qp = torch.bmm(pred.transpose(1, 2), q.reshape(heads, k, n * b)).view(heads, k, n, b)
            qp_c, qp_n = qp.split([hc, hn])
            key_c, key_n = key.split([hc, hn])
            if hc:
                s = pair_scores(qp_c, key_c)  # [hc, query, key, b]
                sc = s * self.bos_scale + (1 - self.bos_scale)  # BOS: 0.5 + 0.5 match
                if self.cfg.attention_relaxation == "gumbel_log" and not hard:
                    # log scores: a match outscores a partial one by the ratio of their
                    # scores, whatever the scale. The rank bias spans 0.5 < log 2, so without
                    # noise the limit is the hard rule (any match beats BOS's 0.5)
                    rank = self.rank_bias * (0.5 / RANK_WEIGHT)
                    logits = (sc.clamp_min(1e-20).log() + rank) / k ** 0.5
                    attn = _gumbel_softmax(logits, tau, 2)  # [hc, i, j, b]
                else:
                    scale = 1e4 if hard else self.cfg.attn_scale * (
                        max(1.0, 1.0 / tau) if self.cfg.sharpen_attention else 1.0)
                    attn = torch.softmax(scale * (sc + self.rank_bias), dim=2)  # [hc, i, j, b]
                out = gather(attn, val)  # [hc, k, n, b]
                cats.append(out)
            if hn:
                # out_i = sum_j (q_i P k_j) v_j = q_i P (sum_j k_j v_j): no [query, key] scores
                if lyr.num_value_read is not None:
                    vread = _gumbel(lyr.num_value_read, tau, hard)  # [hn, v]
                    vals = (vread @ num.view(num.shape[0], -1)).view(hn, 1, n, b)
                    key_n = key_n * vals  # [hn, k, n, b]
                ksum = key_n.cumsum(2) if self.cfg.causal else key_n.sum(2, keepdim=True)
                num = torch.cat([num, (qp_n * ksum).sum(1)], 0)  # sums [hn, n, b]
        outs = []
        if lyr.mc:
            read = _interleave(_gumbel(lyr.mlp_read, tau, hard))  # [mc (first, second), v]
            x = _read(read, cats).view(lyr.mc, 2 * k, n * b)  # [mc, 2 k, n b]
            logits = mlp(x, lyr.mlp_w1, lyr.mlp_b1, lyr.mlp_w2, lyr.mlp_b2)  # [mc, k, n b]
            outs.append(_gumbel_dim1(logits, tau, hard).view(lyr.mc, k, n, b))
        if lyr.mn:
            read = _interleave(_gumbel(lyr.num_read, tau, hard))  # [mn (first, second), v]
            x = (read @ num.view(num.shape[0], -1)).view(lyr.mn, 2, n * b)
            if self.cfg.num_head_values:  # sums can pass n_ctx: the tables saturate there
                x = x.clamp(max=float(self.shape.n_ctx))
            if self.cfg.num_mlp_features == "tents":
                x = tents(x, self.centres)  # [mn, 2 (n_ctx + 1), n b]
            logits = mlp(x, lyr.num_w1, lyr.num_b1, lyr.num_w2, lyr.num_b2)  # [mn, k, n b]
            outs.append(_gumbel_dim1(logits, tau, hard).view(lyr.mn, k, n, b))
        if outs:
            cats.append(torch.cat(outs, 0))
        return num

    @torch.no_grad()
    def discretize(self) -> DiscreteProgram:
        """The argmax program: reads, predicates, MLP lookup tables, float64 unembedding."""
        cfg, k, n_ctx = self.cfg, self.shape.width, self.shape.n_ctx
        cat_index = {name: i for i, name in enumerate(self.cat_names)}
        num_index = {name: i for i, name in enumerate(self.num_names)}
        n_cat, n_num = 2, 1
        cat_heads, num_heads, mlps = [], [], []
        eye = torch.eye(k)
        pairs_cat = torch.cartesian_prod(torch.arange(k), torch.arange(k))  # [k*k, 2]
        values = torch.arange(n_ctx + 1)
        pairs_num = torch.cartesian_prod(values, values).float()  # [(n+1)^2, 2]
        for layer, lyr in enumerate(self.layers):
            hc, hn = lyr.hc, lyr.hn
            reads = lyr.head_read.argmax(-1).tolist()
            preds = lyr.predicate.argmax(-1).tolist()
            for h in range(hc):
                name = f"attn_{layer}_{h}"
                cat_heads.append(CatHead(name=name, layer=layer, index=h, query=reads[h],
                                         key=reads[hc + hn + h], value=reads[2 * (hc + hn) + h],
                                         predicate=tuple(preds[h]), out=cat_index[name]))
            values = ([0] * hn if lyr.num_value_read is None
                      else lyr.num_value_read.argmax(-1).tolist())
            for h in range(hn):
                name = f"num_attn_{layer}_{h}"
                num_heads.append(NumHead(name=name, layer=layer, index=h,
                                         query=reads[hc + h], key=reads[2 * hc + hn + h],
                                         value=values[h], predicate=tuple(preds[hc + h]),
                                         out=num_index[name]))
            mreads = lyr.mlp_read.argmax(-1).tolist()
            onehots = torch.cat([eye[pairs_cat[:, 0]], eye[pairs_cat[:, 1]]], -1)  # [k*k, 2k]
            for m in range(lyr.mc):
                h = torch.relu(lyr.mlp_w1[m] @ onehots.T + lyr.mlp_b1[m])  # [d, k k]
                table = (lyr.mlp_w2[m] @ h + lyr.mlp_b2[m]).argmax(0).view(k, k)
                name = f"mlp_{layer}_{m}"
                mlps.append(MLPTable(name=name, layer=layer, index=m, numerical=False,
                                     inputs=(mreads[m], mreads[lyr.mc + m]),
                                     table=tuple(map(tuple, table.tolist())),
                                     out=cat_index[name]))
            nreads = lyr.num_read.argmax(-1).tolist()
            for m in range(lyr.mn):
                feats = (tents(pairs_num.T[None], self.centres)[0]  # [2 (n + 1), pairs]
                         if cfg.num_mlp_features == "tents" else pairs_num.T)  # [2, pairs]
                h = torch.relu(lyr.num_w1[m] @ feats + lyr.num_b1[m])
                table = (lyr.num_w2[m] @ h + lyr.num_b2[m]).argmax(0).view(n_ctx + 1, n_ctx + 1)
                name = f"num_mlp_{layer}_{m}"
                mlps.append(MLPTable(name=name, layer=layer, index=m, numerical=True,
                                     inputs=(nreads[m], nreads[lyr.mn + m]),
                                     table=tuple(map(tuple, table.tolist())),
                                     out=cat_index[name]))
            n_cat += hc + lyr.mc + lyr.mn
            n_num += hn
        assert n_cat == len(self.cat_names) and n_num == len(self.num_names)
        return DiscreteProgram(
            shape=self.shape, causal=cfg.causal, n_layers=cfg.n_layers,
            cat_vars=tuple(self.cat_names), num_vars=tuple(self.num_names),
            cat_heads=tuple(cat_heads), num_heads=tuple(num_heads), mlps=tuple(mlps),
            unembed_cat=self.unembed_cat.detach().double().numpy().copy(),
            unembed_num=self.unembed_num.detach().double().numpy().copy(),
            unembed_bias=self.unembed_bias.detach().double().numpy().copy())
