"""The compiled TransformerBridge equals the program on every input of a small task."""

from __future__ import annotations

import itertools

import pytest
import torch

from programs.compile import Edge, compile_program
from programs.discrete import run_discrete
from programs_helpers import PAD_SHAPE, SHAPE, random_model
from workbench.errors import UserError


def all_inputs(length: int) -> torch.Tensor:
    """Every sequence of ``length`` tokens after BOS over the shape's vocabulary."""
    body = list(itertools.product(range(len(SHAPE.input_vocab)), repeat=length))
    x = torch.tensor(body, dtype=torch.long)
    return torch.cat([torch.zeros(len(x), 1, dtype=torch.long), x], 1)


@pytest.mark.parametrize("seed, causal, shape", [(0, False, SHAPE), (1, True, SHAPE),
                                                (2, False, PAD_SHAPE), (3, True, PAD_SHAPE)])
def test_compiled_bridge_equals_program_on_all_inputs(seed, causal, shape):
    model = random_model(seed, layers=3, cat_heads=2, num_heads=0, cat_mlps=2, num_mlps=0,
                         causal=causal, shape=shape)
    prog = model.discretize()
    bridge, truth = compile_program(prog)
    x = all_inputs(SHAPE.n_ctx - 1)  # 5^4 = 625 inputs: the whole input space
    with torch.no_grad():
        logits = bridge(x, return_type="logits")  # [batch, pos, d_out]
    trace = run_discrete(prog, x)
    assert torch.equal(logits.argmax(-1), trace.predictions)
    # every edge names real nodes; every live head reads its query/key/value writers
    nodes = {"embed", "pos_embed", "unembed"} | {f"attn.{layer}.{h}"
                                                   for layer, h in truth.heads.values()}
    nodes |= {f"mlp.{layer}" for layer in range(prog.n_layers)}
    assert all(e.src in nodes and e.dst in nodes for e in truth.edges)
    for head in prog.cat_heads:
        if head.name in truth.heads:
            node = f"attn.{head.layer}.{head.index}"
            writer = truth.writers[prog.cat_vars[head.query]]
            assert Edge(writer, node, "q", "match") in truth.edges


def test_compile_edges_are_exact_on_a_hand_checked_head():
    model = random_model(4, layers=1, cat_heads=1, num_heads=0, cat_mlps=0, num_mlps=0)
    prog = model.discretize()
    _, truth = compile_program(prog)
    head = prog.cat_heads[0]
    reads = {(e.port, e.src) for e in truth.edges if e.dst == "attn.0.0" and e.role == "match"}
    writer = {0: "embed", 1: "pos_embed"}
    assert reads == {("q", writer[head.query]), ("k", writer[head.key]),
                     ("v", writer[head.value])}


@pytest.mark.parametrize("seed, causal, shape", [(0, False, SHAPE), (1, True, SHAPE),
                                                (2, False, PAD_SHAPE), (3, True, PAD_SHAPE),
                                                (4, False, PAD_SHAPE), (5, True, PAD_SHAPE)])
def test_compiled_numerical_program_equals_program_on_all_inputs(seed, causal, shape):
    """Counting heads, numerical MLPs over counts, and numerical heads whose key is a computed
    variable (its value at BOS copied by a helper head) all compile exactly."""
    model = random_model(seed, layers=3, cat_heads=2, num_heads=2, cat_mlps=1, num_mlps=2,
                         causal=causal, shape=shape)
    prog = model.discretize()
    bridge, truth = compile_program(prog)
    x = all_inputs(SHAPE.n_ctx - 1)
    with torch.no_grad():
        logits = bridge(x, return_type="logits")
    trace = run_discrete(prog, x)
    assert torch.equal(logits.argmax(-1), trace.predictions)
    assert (logits.double() - trace.logits).abs().max() < 1e-4  # the logits, not just argmax
    # numerical MLPs sit one bridge layer after the counts they read
    assert bridge.cfg.n_layers == 2 * prog.n_layers
    for head in prog.num_heads:
        if head.name in truth.heads:
            layer, index = truth.heads[head.name]
            assert layer == 2 * head.layer and index >= 2  # after the categorical heads
            assert Edge(f"attn.{layer}.{index}", f"mlp.{layer}", "in", "match") in truth.edges
            if head.key >= 2:
                assert f"{head.name}@bos" in truth.heads
    nodes = {"embed", "pos_embed", "unembed"} | {f"attn.{layer}.{h}"
                                                   for layer, h in truth.heads.values()}
    nodes |= {f"mlp.{layer}" for layer in range(bridge.cfg.n_layers)}
    assert all(e.src in nodes and e.dst in nodes for e in truth.edges)


def test_count_decoding_is_exact_for_every_count():
    from programs.compile_numeric import count_units

    n = 16
    for c in range(n):
        x = 1.0 / (c + 1)
        total = sum(w * max(0.0, sum(wr * x for _, wr in reads) + bias)
                    for reads, bias, writes in count_units(0, 1, n) for _, w in writes)
        assert abs(total - c) < 1e-6, (c, total)


def test_unembedding_reads_only_variables_whose_logit_rows_differ():
    prog = random_model(5, layers=2, cat_heads=2, num_heads=0, cat_mlps=1, num_mlps=0,
                        causal=True).discretize()
    tokens_to_logits = Edge("embed", "unembed", "in", "match")
    positions_to_logits = Edge("pos_embed", "unembed", "in", "match")
    prog.unembed_cat[0][:] = 0.0  # tokens: no logit contribution at all
    prog.unembed_cat[1][:] = prog.unembed_cat[1][0]  # positions: the same row for every value
    prog.unembed_cat[1][:, 0] += 3.0  # ... and that row is not zero: it is a constant
    bridge, truth = compile_program(prog)
    assert tokens_to_logits not in truth.edges
    assert positions_to_logits not in truth.edges
    x = all_inputs(SHAPE.n_ctx - 1)
    with torch.no_grad():
        logits = bridge(x, return_type="logits")
    assert torch.equal(logits.argmax(-1), run_discrete(prog, x).predictions)
    prog.unembed_cat[1][2, 1] += 1.0  # now position 2 changes a logit: the edge is real
    _, truth = compile_program(prog)
    assert positions_to_logits in truth.edges


def test_heads_summing_a_variable_are_refused_clearly():
    prog = random_model(0, layers=3, num_heads=2, num_mlps=2, values=True).discretize()
    summing = [h.name for h in prog.num_heads if h.value != 0]
    with pytest.raises(UserError, match="num_head_values") as err:
        compile_program(prog)
    assert any(name in str(err.value) for name in summing)
