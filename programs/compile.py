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
differs from the default, ``relu(a_x + b_y - 1)``. Numerical heads and MLPs: see
:mod:`programs.compile_numeric` (a head averages over BOS and its matches, the layer's MLP decodes
the count into one column ``<num var>``; a numerical MLP is a piecewise-linear table over two
counts; heads that sum a variable other than ``ones`` are refused). A program with live
numerical MLPs compiles to two bridge layers per program layer (the second holds only those
MLPs, after the counts are decoded); otherwise to one.

:func:`compile_program` returns the bridge and :class:`GroundTruth` (:func:`compile_weights`: the
model config and weights instead of the bridge, for saving as a run): every edge of the compiled
model's computation, ``Edge(src, dst, port, role)`` with nodes ``embed``, ``pos_embed``,
``attn.{layer}.{head}``, ``mlp.{layer}``, ``unembed`` and ports ``q``/``k``/``v`` (heads),
``in`` (MLPs, unembedding). ``role`` says why: ``match`` (the predicate / table / logit rows),
``tiebreak`` (positions used for the rank penalty), ``bos`` (``@bos`` copies and their gating,
BOS's own match in a count), ``sink`` (a numerical head's attention to BOS), ``pad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from programs.compile_numeric import (bos_match_units, copy_from_bos_head, count_units,
                                      share_head, table_units)
from programs.decompile import analyse
from programs.discrete import DiscreteProgram, rank_matrix
from training.tasks.common import BOS
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
    # program head name -> (bridge layer, bridge head index); "<num head>@bos": the helper head
    # copying a numerical head's computed key from position 0
    heads: dict[str, tuple[int, int]]


def compile_program(prog: DiscreteProgram):
    """``(bridge, GroundTruth)`` realising ``prog`` exactly."""
    from workbench.models import to_bridge

    cfg, state, truth = compile_weights(prog)
    return to_bridge(cfg, state), truth


def compile_weights(prog: DiscreteProgram):
    """``(ModelConfig, native state dict, GroundTruth)`` of the compiled transformer."""
    from workbench.models import ModelConfig

    an = analyse(prog)
    k, n = prog.shape.width, prog.shape.n_ctx
    names = prog.cat_vars
    heads = [h for h in prog.cat_heads if h.name in an.live]
    num_heads = [h for h in prog.num_heads if h.name in an.live]
    summing = [h.name for h in num_heads if h.value != 0]
    if summing:  # a softmax head averages; a sum of a variable is not one linear read away
        raise UserError(f"cannot compile numerical heads that sum a variable other than ones: "
                        f"{', '.join(summing)} (trained with num_head_values=true)")
    mlps = [m for m in prog.mlps if m.name in an.live and not m.numerical]
    num_mlps = [m for m in prog.mlps if m.name in an.live and m.numerical]
    # numerical MLPs read the counts the layer's first MLP decodes: a second bridge layer
    per_layer = 2 if num_mlps else 1
    n_bridge = prog.n_layers * per_layer

    def bridge(layer: int, stage: int = 0) -> int:
        return layer * per_layer + min(stage, per_layer - 1)

    key_vars = {h.key for h in heads} | {h.key for h in num_heads}
    live_vars = sorted({0, 1} | {m.out for m in (*heads, *mlps, *num_mlps)})
    blocks: dict[str, tuple[int, int]] = {}

    def add(name: str, size: int) -> int:
        start = max((end for _, end in blocks.values()), default=0)
        blocks[name] = (start, start + size)
        return start

    for v in live_vars:
        add(names[v], k)
    for v in sorted(key_vars):
        add(names[v] + "@bos", k)
    ones = add("ones", 1)
    pad_id = prog.shape.pad_id
    pad_col = None if pad_id is None else add("pad", 1)
    share_col, count_col, bos_key = {}, {}, {}
    for h in num_heads:
        share_col[h.name] = add(h.name + ":share", 1)
        count_col[h.out] = add(prog.num_vars[h.out], 1)
        if h.key >= 2:  # a computed key: its value at position 0 is copied by a helper head
            start = add(h.name + ":key@0", k)
            bos_key[h.name] = {c: start + c for c in an.cat_domain[h.key]}
    d_model = max(end for _, end in blocks.values())
    writers = {"tokens": "embed", "positions": "pos_embed", "ones": "embed"}
    cat_slots = max((h.index + 1 for h in prog.cat_heads), default=0)
    num_slots = max((h.index + 1 for h in prog.num_heads), default=0)
    slot = {h.name: (bridge(h.layer), h.index) for h in heads}
    slot |= {h.name: (bridge(h.layer), cat_slots + h.index) for h in num_heads}
    helpers: dict[str, tuple[int, int]] = {}
    for h in num_heads:
        if h.name in bos_key:
            layer = bridge(h.layer)
            used = sum(1 for b, _ in helpers.values() if b == layer)
            helpers[h.name] = (layer, cat_slots + num_slots + used)
    for h in heads:
        writers[names[h.out]] = "attn.{}.{}".format(*slot[h.name])
    for m in mlps:
        writers[names[m.out]] = f"mlp.{bridge(m.layer)}"
    for h in num_heads:
        writers[prog.num_vars[h.out]] = f"mlp.{bridge(h.layer)}"
    for m in num_mlps:
        writers[names[m.out]] = f"mlp.{bridge(m.layer, 1)}"

    def col(v: int, value: int, bos: bool = False) -> int:
        return blocks[names[v] + ("@bos" if bos else "")][0] + value

    def onehot_cols(v: int, bos: bool = False) -> dict[int, int]:
        return {c: col(v, c, bos) for c in an.cat_domain[v]}

    def num_col(v: int) -> int:
        return ones if v == 0 else count_col[v]

    n_heads = max(1, max((b[1] + 1 for b in (*slot.values(), *helpers.values())), default=1))
    d_head = k + n + (pad_id is not None)
    # MLP units per bridge layer: table pairs, count decoding and @bos gating units
    units: list[list[tuple[list[tuple[int, float]], float, list[tuple[int, float]]]]] = [
        [] for _ in range(n_bridge)]
    out_bias: list[dict[int, float]] = [{} for _ in range(n_bridge)]
    edges: set[Edge] = set()
    p0 = col(1, 0)
    for m in mlps:
        node = f"mlp.{bridge(m.layer)}"
        a, b = m.inputs
        doms = an.cat_domain[a], an.cat_domain[b]
        outs = {(x, y): m.table[x][y] for x in doms[0] for y in doms[1]}
        counts: dict[int, int] = {}
        for o in outs.values():
            counts[o] = counts.get(o, 0) + 1
        default = min(counts, key=lambda o: (-counts[o], o))
        lyr = units[bridge(m.layer)]
        out_bias[bridge(m.layer)][col(m.out, default)] = 1.0  # the default, unless a unit fires
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
            node = f"mlp.{bridge(h.layer)}"
            for c in an.cat_domain[h.out]:
                units[bridge(h.layer)].append(([(col(h.out, c), 1.0), (p0, 1.0)], -1.0,
                                               [(col(h.out, c, bos=True), 1.0)]))
            edges.add(Edge(writers[names[h.out]], node, "in", "bos"))
            edges.add(Edge("pos_embed", node, "in", "bos"))
    # the value of tokens (BOS) and positions (0) at position 0
    bos_values = {0: prog.shape.input_vocab.index(BOS) if BOS in prog.shape.input_vocab
                  else None, 1: 0}
    for h in num_heads:  # the layer's MLP turns the head's 1/(c'+1) into the count c
        layer = bridge(h.layer)
        node, head_node = f"mlp.{layer}", "attn.{}.{}".format(*slot[h.name])
        units[layer] += count_units(share_col[h.name], count_col[h.out], n)
        if h.name in bos_key:
            bos_units = bos_match_units(onehot_cols(h.query), h.predicate, count_col[h.out],
                                        bos_key_cols=bos_key[h.name])
            edges.add(Edge("attn.{}.{}".format(*helpers[h.name]), node, "in", "bos"))
        else:
            bos_units = bos_match_units(onehot_cols(h.query), h.predicate, count_col[h.out],
                                        bos_value=bos_values[h.key])
        units[layer] += bos_units
        edges.add(Edge(head_node, node, "in", "match"))
        if bos_units:  # the query is read only where BOS can match it
            edges.add(Edge(writers[names[h.query]], node, "in", "bos"))
    for m in num_mlps:
        layer = bridge(m.layer, 1)
        node = f"mlp.{layer}"
        cols = (num_col(m.inputs[0]), num_col(m.inputs[1]))
        doms = (an.num_domain[m.inputs[0]], an.num_domain[m.inputs[1]])
        made, constant = table_units(cols, doms, m.table, onehot_cols(m.out))
        units[layer] += made
        out_bias[layer].update(constant)
        if m.out in key_vars:
            made, _ = table_units(cols, doms, m.table, onehot_cols(m.out, bos=True), gate_col=p0)
            units[layer] += made
            edges.add(Edge("pos_embed", node, "in", "bos"))
        for v in set(m.inputs):
            edges.add(Edge(writers[prog.num_vars[v]], node, "in", "match"))
    d_mlp = max(1, max(len(u) for u in units))
    cfg = ModelConfig(n_layers=n_bridge, d_model=d_model, n_heads=n_heads, d_head=d_head,
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
        pos[0, col(0, prog.shape.input_vocab.index(BOS), bos=True)] = 1.0
    sd["tok_embed.weight"], sd["pos.weight"] = emb, pos
    ranks = rank_matrix(n).double()
    # positional score: -0.3 C rank / max rank, plus 0.5 C for key position 0 (the BOS default)
    pos_score = -0.3 * MATCH * ranks / ranks.max()
    pos_score[:, 0] += 0.5 * MATCH
    scale = d_head ** 0.5  # undo the bridge's 1/sqrt(d_head)
    attn: list[list[tuple[int, tuple]]] = [[] for _ in range(n_bridge)]  # (base, entries)
    positions = [col(1, i) for i in range(n)]
    pad = None if pad_col is None else (ones, pad_col)
    for h in num_heads:
        layer, index = slot[h.name]
        node = f"attn.{layer}.{index}"
        attn[layer].append((index * d_head, share_head(
            query_cols=onehot_cols(h.query), key_cols=onehot_cols(h.key),
            key_bos_cols=onehot_cols(h.key, bos=True), predicate=h.predicate,
            position_cols=positions, p0_col=p0, share_col=share_col[h.name], match=MATCH,
            scale=scale, n_ctx=n, k=k, pad=pad)))
        edges.update({Edge(writers[names[h.query]], node, "q", "match"),
                      Edge(writers[names[h.key]], node, "k", "match"),
                      Edge("pos_embed", node, "q", "sink"), Edge("pos_embed", node, "k", "sink"),
                      Edge("pos_embed", node, "v", "sink")})
        if pad is not None:
            edges.update({Edge("embed", node, "q", "pad"), Edge("embed", node, "k", "pad")})
        if h.key >= 2:
            edges.add(Edge(writers[names[h.key]], node, "k", "bos"))
        if h.name in bos_key:
            layer, index = helpers[h.name]
            node = f"attn.{layer}.{index}"
            attn[layer].append((index * d_head, copy_from_bos_head(
                value_cols=onehot_cols(h.key), out_cols=bos_key[h.name], ones_col=ones, p0_col=p0,
                match=MATCH, scale=scale)))
            edges.update({Edge("embed", node, "q", "bos"), Edge("pos_embed", node, "k", "bos"),
                          Edge(writers[names[h.key]], node, "v", "bos")})
    for layer in range(n_bridge):
        wq, wk, wv = (torch.zeros(n_heads * d_head, d_model) for _ in range(3))
        wo = torch.zeros(d_model, n_heads * d_head)
        for h in (h for h in heads if bridge(h.layer) == layer):
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
        for base, (q, kk, v, o) in attn[layer]:
            for w, entries in ((wq, q), (wk, kk), (wv, v)):
                for dim, c, value in entries:
                    w[base + dim, c] += value
            for c, dim, value in o:
                wo[c, base + dim] += value
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
        for c, value in out_bias[layer].items():
            b_out[c] += value
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
    for v, c in count_col.items():
        if prog.unembed_num[v].any():
            head[:, c] = torch.from_numpy(prog.unembed_num[v])
            edges.add(Edge(writers[prog.num_vars[v]], "unembed", "in", "match"))
    head[:, ones] = bias
    sd["head.weight"] = head.float()
    head_map = dict(slot) | {f"{name}@bos": where for name, where in helpers.items()}
    return cfg, sd, GroundTruth(edges=frozenset(edges), writers=writers, blocks=blocks,
                                heads=head_map)
