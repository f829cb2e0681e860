"""Compile a discrete Transformer Program into an ordinary ``TransformerBridge``.

The residual stream is the concatenation of named blocks (no LayerNorm, relu MLPs):

- ``<var>``: the one-hot of every live categorical variable (width ``k``), written once by its
  writer (``embed`` for tokens, ``pos_embed`` for positions, a head or a layer's MLP otherwise);
- ``<var>@bos``: for variables some head uses as a *key*, the one-hot at position 0 only (zero
  elsewhere). Keys read ``<var> - 0.5 <var>@bos`` so that position 0 scores
  ``C (0.5 + 0.5 match)``: the runtime's rule "BOS when nothing matches, ranked by distance when it
  matches". ``pos_embed`` writes ``positions@bos`` and ``tokens@bos`` (inputs start with BOS, the
  task contract); a layer's MLP writes the ``@bos`` copies of that layer's outputs (gated units);
- ``ones``: a constant 1 (the unembedding bias and constant rows of pruned variables);
- ``pad``: 1 at padding tokens, for programs whose shape has a padding token. Every head's extra
  query/key dimension (``ones`` against ``-pad``) scores padding keys ``-3 C``, below the BOS
  default: padding positions are never keys, as in the runtime.

Categorical head: ``q = C onehot(P[query])`` and ``k = key - 0.5 key@bos`` give ``C`` per match;
a positional part (``q`` = position one-hot, ``k`` = a column of the rank table) adds the
runtime's rank as a small penalty and ``0.5 C`` at position 0, so softmax picks the runtime's key
with weight ``1 - O(e^-40)``. MLP: one ReLU unit per (first, second) input pair whose table output
differs from the default, ``relu(a_x + b_y - 1)``. Numerical heads/MLPs are not compiled yet.

:func:`compile_program` returns the bridge and :class:`GroundTruth` (:func:`compile_weights`: the
model config and weights instead of the bridge, for saving as a run): every edge of the compiled
model's computation, ``Edge(src, dst, port, role)`` with nodes ``embed``, ``pos_embed``,
``attn.{layer}.{head}``, ``mlp.{layer}``, ``unembed`` and ports ``q``/``k``/``v`` (heads),
``in`` (MLPs, unembedding). ``role`` says why: ``match`` (the predicate / table / logit rows),
``tiebreak`` (positions used for the rank penalty), ``bos`` (``@bos`` copies and their gating).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from programs.decompile import analyse
from programs.discrete import DiscreteProgram, rank_matrix
from workbench.errors import UserError

MATCH = 2000.0  # score per match; the rank penalty spans 0.3 * MATCH


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    port: str
    role: str


@dataclass(frozen=True)
class GroundTruth:
    """The compiled model's true circuit: edges plus where each variable lives."""

    edges: frozenset[Edge]
    writers: dict[str, str]  # variable -> node writing it
    blocks: dict[str, tuple[int, int]]  # residual block -> (start, end) columns
    heads: dict[str, tuple[int, int]]  # program head name -> (layer, bridge head index)


def compile_program(prog: DiscreteProgram):
    """``(bridge, GroundTruth)`` realising ``prog`` exactly (categorical programs)."""
    from workbench.models import to_bridge

    cfg, state, truth = compile_weights(prog)
    return to_bridge(cfg, state), truth


def compile_weights(prog: DiscreteProgram):
    """``(ModelConfig, native state dict, GroundTruth)`` of the compiled transformer."""
    from workbench.models import ModelConfig

    if prog.num_heads or any(m.numerical for m in prog.mlps):
        raise UserError("compile supports categorical programs only (numerical heads/MLPs not "
                        "yet); train with --set n_num_heads=0 --set n_num_mlps=0")
    an = analyse(prog)
    k, n = prog.shape.width, prog.shape.n_ctx
    names = prog.cat_vars
    heads = [h for h in prog.cat_heads if h.name in an.live]
    mlps = [m for m in prog.mlps if m.name in an.live]
    key_vars = {h.key for h in heads}
    live_vars = sorted({0, 1} | {m.out for m in (*heads, *mlps)})
    blocks: dict[str, tuple[int, int]] = {}
    for v in live_vars:
        blocks[names[v]] = (len(blocks) * k, len(blocks) * k + k)
    for v in sorted(key_vars):
        blocks[names[v] + "@bos"] = (len(blocks) * k, len(blocks) * k + k)
    ones = len(blocks) * k
    pad_id = prog.shape.pad_id
    pad_col = None if pad_id is None else ones + 1
    d_model = ones + 1 + (pad_id is not None)
    writers = {"tokens": "embed", "positions": "pos_embed"}
    for h in heads:
        writers[names[h.out]] = f"attn.{h.layer}.{h.index}"
    for m in mlps:
        writers[names[m.out]] = f"mlp.{m.layer}"

    def col(v: int, value: int, bos: bool = False) -> int:
        return blocks[names[v] + ("@bos" if bos else "")][0] + value

    n_heads = max(1, max((h.index + 1 for h in prog.cat_heads), default=1))
    d_head = k + n + (pad_id is not None)
    # MLP units per layer: table pairs plus @bos gating units.
    units: list[list[tuple[list[tuple[int, float]], float, list[tuple[int, float]]]]] = [
        [] for _ in range(prog.n_layers)]
    out_bias: list[list[int]] = [[] for _ in range(prog.n_layers)]
    edges: set[Edge] = set()
    p0 = col(1, 0)
    for m in mlps:
        node = f"mlp.{m.layer}"
        a, b = m.inputs
        doms = an.cat_domain[a], an.cat_domain[b]
        outs = {(x, y): m.table[x][y] for x in doms[0] for y in doms[1]}
        counts: dict[int, int] = {}
        for o in outs.values():
            counts[o] = counts.get(o, 0) + 1
        default = min(counts, key=lambda o: (-counts[o], o))
        lyr = units[m.layer]
        out_bias[m.layer].append(col(m.out, default))  # the default, unless a unit fires
        for (x, y), o in outs.items():
            if o != default:
                lyr.append(([(col(a, x), 1.0), (col(b, y), 1.0)], -1.0,
                            [(col(m.out, o), 1.0), (col(m.out, default), -1.0)]))
            if m.out in key_vars:
                lyr.append(([(col(a, x), 1.0), (col(b, y), 1.0), (p0, 1.0)], -2.0,
                            [(col(m.out, o, bos=True), 1.0)]))
        for v in {a, b}:
            edges.add(Edge(writers[names[v]], node, "in", "match"))
        if m.out in key_vars:
            edges.add(Edge("pos_embed", node, "in", "bos"))
    for h in heads:
        if h.out in key_vars:  # the layer's MLP writes the @bos copy of this head's output
            node = f"mlp.{h.layer}"
            for c in an.cat_domain[h.out]:
                units[h.layer].append(([(col(h.out, c), 1.0), (p0, 1.0)], -1.0,
                                       [(col(h.out, c, bos=True), 1.0)]))
            edges.add(Edge(writers[names[h.out]], node, "in", "bos"))
            edges.add(Edge("pos_embed", node, "in", "bos"))
    d_mlp = max(1, max(len(u) for u in units))
    cfg = ModelConfig(n_layers=prog.n_layers, d_model=d_model, n_heads=n_heads, d_head=d_head,
                      d_mlp=d_mlp, d_vocab=len(prog.shape.input_vocab),
                      d_vocab_out=len(prog.shape.output_vocab), n_ctx=n, act_fn="relu",
                      normalization_type=None,
                      attention_dir="causal" if prog.causal else "bidirectional")
    sd: dict[str, torch.Tensor] = {}
    emb = torch.zeros(cfg.d_vocab, d_model)
    for t in range(cfg.d_vocab):
        emb[t, col(0, t)] = 1.0
        emb[t, ones] = 1.0
    if pad_col is not None:
        emb[pad_id, pad_col] = 1.0
    pos = torch.zeros(n, d_model)
    for p in range(n):
        pos[p, col(1, p)] = 1.0
    if 1 in key_vars:
        pos[0, col(1, 0, bos=True)] = 1.0
    if 0 in key_vars:  # inputs start with BOS (the aligned-task contract)
        pos[0, col(0, prog.shape.input_vocab.index("BOS"), bos=True)] = 1.0
    sd["tok_embed.weight"], sd["pos.weight"] = emb, pos
    ranks = rank_matrix(n).double()
    # positional score: -0.3 C rank / max rank, plus 0.5 C for key position 0 (the BOS default)
    pos_score = -0.3 * MATCH * ranks / ranks.max()
    pos_score[:, 0] += 0.5 * MATCH
    scale = d_head ** 0.5  # undo the bridge's 1/sqrt(d_head)
    for layer in range(prog.n_layers):
        wq, wk, wv = (torch.zeros(n_heads * d_head, d_model) for _ in range(3))
        wo = torch.zeros(d_model, n_heads * d_head)
        for h in (h for h in heads if h.layer == layer):
            base = h.index * d_head
            node = f"attn.{layer}.{h.index}"
            kdom = set(an.cat_domain[h.key])
            for qv in an.cat_domain[h.query]:
                if h.predicate[qv] in kdom:
                    wq[base + h.predicate[qv], col(h.query, qv)] = MATCH * scale
            for kv in kdom:
                wk[base + kv, col(h.key, kv)] = 1.0
                wk[base + kv, col(h.key, kv, bos=True)] = -0.5
            for i in range(n):
                wq[base + k + i, col(1, i)] = scale
                for j in range(n):
                    wk[base + k + i, col(1, j)] = pos_score[i, j]
            if pad_col is not None:
                wq[base + k + n, ones] = MATCH * scale
                wk[base + k + n, pad_col] = -3.0
                edges.update({Edge("embed", node, "q", "pad"), Edge("embed", node, "k", "pad")})
            for c in an.cat_domain[h.value]:
                wv[base + c, col(h.value, c)] = 1.0
                wo[col(h.out, c), base + c] = 1.0
            edges.update({Edge(writers[names[h.query]], node, "q", "match"),
                          Edge(writers[names[h.key]], node, "k", "match"),
                          Edge(writers[names[h.value]], node, "v", "match"),
                          Edge("pos_embed", node, "q", "tiebreak"),
                          Edge("pos_embed", node, "k", "tiebreak")})
            if h.key >= 2:
                edges.add(Edge(writers[names[h.key]], node, "k", "bos"))
        pre = f"layers.{layer}"
        sd.update({f"{pre}.attn.q.weight": wq, f"{pre}.attn.k.weight": wk,
                   f"{pre}.attn.v.weight": wv, f"{pre}.attn.o.weight": wo})
        for name in ("q", "k", "v"):
            sd[f"{pre}.attn.{name}.bias"] = torch.zeros(n_heads * d_head)
        sd[f"{pre}.attn.o.bias"] = torch.zeros(d_model)
        w_in, b_in = torch.zeros(d_mlp, d_model), torch.zeros(d_mlp)
        w_out = torch.zeros(d_model, d_mlp)
        for u, (reads, bias, writes) in enumerate(units[layer]):
            for c, w in reads:
                w_in[u, c] += w
            b_in[u] = bias
            for c, w in writes:
                w_out[c, u] += w
        b_out = torch.zeros(d_model)
        b_out[out_bias[layer]] = 1.0
        sd.update({f"{pre}.mlp.fc_in.weight": w_in, f"{pre}.mlp.fc_in.bias": b_in,
                   f"{pre}.mlp.fc_out.weight": w_out, f"{pre}.mlp.fc_out.bias": b_out})
    head = torch.zeros(cfg.d_vocab_out, d_model, dtype=torch.float64)
    bias = torch.from_numpy(prog.unembed_bias) + torch.from_numpy(prog.unembed_num[0])
    for v in range(len(names)):
        rows = {tuple(prog.unembed_cat[v][c]) for c in an.cat_domain[v]}
        if v in an.const_cat or len(rows) == 1:
            # the same logit row for every value the variable takes is a constant: it goes in
            # the bias, and the unembedding does not read the variable (no edge)
            bias = bias + torch.from_numpy(prog.unembed_cat[v][an.cat_domain[v][0]])
        elif v in live_vars:
            for c in an.cat_domain[v]:
                head[:, col(v, c)] = torch.from_numpy(prog.unembed_cat[v][c])
            edges.add(Edge(writers[names[v]], "unembed", "in", "match"))
        else:
            raise AssertionError(f"variable {names[v]} neither live nor constant")
    head[:, ones] = bias
    sd["head.weight"] = head.float()
    head_map = {h.name: (h.layer, h.index) for h in heads}
    return cfg, sd, GroundTruth(edges=frozenset(edges), writers=writers, blocks=blocks,
                                heads=head_map)
