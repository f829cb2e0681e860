"""Decompiled programs agree with the discrete model on every input (property test over seeds)."""

from __future__ import annotations

import ast

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from programs.decompile import analyse, decompile, load_program
from programs.discrete import run_discrete
from programs.verify import verify
from programs_helpers import PAD_SHAPE, SHAPE, random_inputs, random_model

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 3), cat_heads=st.integers(0, 2),
       num_heads=st.integers(0, 2), cat_mlps=st.integers(0, 2), num_mlps=st.integers(0, 2),
       causal=st.booleans(), padded=st.booleans(), values=st.booleans(),
       features=st.sampled_from(["tents", "linear"]))
def test_program_equals_discrete_model(seed, layers, cat_heads, num_heads, cat_mlps, num_mlps,
                                       causal, padded, values, features):
    model = random_model(seed, layers=layers, cat_heads=cat_heads, num_heads=num_heads,
                         cat_mlps=cat_mlps, num_mlps=num_mlps, causal=causal,
                         shape=PAD_SHAPE if padded else SHAPE, values=values, features=features)
    prog = model.discretize()
    result = verify(prog, random_inputs(seed))
    assert result.agreement == 1.0, result.mismatches[:1]


def test_program_on_shorter_inputs_matches_model():
    prog = random_model(3).discretize()
    run = load_program(decompile(prog))["run"]
    x = random_inputs(4, n=50)[:, :3]
    preds = run_discrete(prog, x).predictions.tolist()
    for row, pred in zip(x.tolist(), preds):
        tokens = [SHAPE.input_vocab[i] for i in row]
        assert run(tokens) == [SHAPE.output_vocab[i] for i in pred]


@pytest.mark.parametrize("shape", [SHAPE, PAD_SHAPE])
@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize("features", ["tents", "linear"])
def test_hard_forward_matches_discrete_model(shape, values, features):
    model = random_model(2, layers=3, num_heads=2, num_mlps=2, shape=shape, values=values,
                         features=features)
    x = random_inputs(2)
    with torch.no_grad():
        logits = model(x, tau=1.0, hard=True).double()  # [batch, pos, d_out]
    prog = model.discretize()
    trace = run_discrete(prog, x)
    assert torch.allclose(logits, trace.logits, atol=1e-4, rtol=1e-5)
    summed = [h.value for h in prog.num_heads if h.value != 0]
    assert bool(summed) == values  # the option makes heads sum other variables
    if values:  # and the sums pass n_ctx, where the numerical MLPs saturate
        assert trace.num.max() > shape.n_ctx


def test_padding_positions_are_never_keys():
    """The same weights with and without a padding token: outputs differ exactly where a head
    would otherwise select or count a PAD position."""
    x = random_inputs(7)
    plain = random_model(7, layers=2, cat_heads=2, num_heads=2).discretize()
    padded = random_model(7, layers=2, cat_heads=2, num_heads=2, shape=PAD_SHAPE).discretize()
    pad = PAD_SHAPE.pad_id
    with_pad, without = run_discrete(padded, x), run_discrete(plain, x)
    for name, chosen in with_pad.selected.items():
        assert not (x.gather(1, chosen) == pad).any(), name  # never a PAD key
    no_pad_rows = ~(x == pad).any(1)
    assert torch.equal(with_pad.predictions[no_pad_rows], without.predictions[no_pad_rows])
    assert not torch.equal(with_pad.logits, without.logits)  # some head did see PAD keys


def test_export_is_deterministic_and_standalone():
    a = decompile(random_model(7).discretize())
    b = decompile(random_model(7).discretize())
    assert a == b
    tree = ast.parse(a)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == []  # the runtime is inlined; nothing to import
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "run" in names and any(n.startswith("predicate_") for n in names)
    assert any(n.startswith("lookup_") for n in names)


def test_constant_variables_are_pruned_exactly():
    model = random_model(11, layers=2)
    with torch.no_grad():  # mlp_0_0 (and what only it reads) no longer matters to the output
        idx = model.cat_names.index("mlp_0_0")
        model.unembed_cat[idx] = model.unembed_cat[idx][0]
    prog = model.discretize()
    an = analyse(prog)
    source = decompile(prog)
    if "mlp_0_0" not in an.live:
        assert "def lookup_mlp_0_0" not in source
    assert verify(prog, random_inputs(11), source).agreement == 1.0


def test_unknown_token_is_rejected_by_program():
    run = load_program(decompile(random_model(1).discretize()))["run"]
    try:
        run(["BOS", "nope"])
    except ValueError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("unknown token accepted")


def test_summing_heads_and_saturated_tables_export_exactly():
    """``num_head_values``: heads sum earlier sums (past n_ctx); the numerical MLPs read them
    saturated at n_ctx, in the model and in the exported program alike."""
    prog = random_model(0, layers=3, num_heads=2, num_mlps=2, values=True).discretize()
    assert any(h.value != 0 for h in prog.num_heads)
    source = decompile(prog)
    assert "saturate(" in source.split("def run")[-1]
    assert verify(prog, random_inputs(0)).agreement == 1.0
