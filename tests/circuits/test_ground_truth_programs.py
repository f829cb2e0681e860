"""Ground truth (issue 6): Edge Pruning recovers the exact circuit of a compiled Transformer Program.

A categorical Transformer Program is built by hand (two layers; a reverse head, an MLP table, a
"closest earlier equal token" head, a dead distractor head) and compiled to an ordinary
``TransformerBridge`` with :func:`programs.compile.compile_program`, which also returns its
``GroundTruth`` edges. Edge Pruning (Bhaskar et al. 2024) then searches the bridge with **zero
ablation** and the KL objective; the reference notes that the Tracr ground-truth experiments used
zero ablation with smaller learning rates. Interchange ablation cannot see the positional edges
at all (the corrupted run has the same position embedding), so zero ablation is the one under
which the compiled circuit is fully identifiable.

Role handling. ``GroundTruth`` labels every edge ``match`` (predicate / table / logit rows),
``tiebreak`` (position one-hots used for the closest-match rank penalty and the BOS default) or
``bos`` (``@bos`` copies). Under zero ablation the helper edges carry information the output
depends on (without the rank penalty, ties between matches become averages), so they are part of
the true circuit: the expected edge set is *every* ground-truth edge projected onto the search
graph. ``match`` edges must all be recovered (recall 1.0); the only non-``match`` graph edges
here are the two ``tiebreak`` edges of the layer-1 head (in layer 0 they coincide with the
positional ``match`` edges; no head keys on a module output, so no ``bos`` edges appear).
Every logit row of every read variable is non-trivial, so every unembedding edge the ground
truth lists is functional (the test checks that removing any one truth edge hurts).

Extraction. The search's ranking must separate the truth perfectly (every truth edge scores above
every other edge). The circuit is then the *smallest faithful* prefix of that ranking: the fewest
top-scoring edges (after dropping edges disconnected from the output) whose zero-ablated KL to the
full model is below ``FAITHFUL_KL`` (no ground truth is used to pick it). The reference
extraction at the masks' expected sparsity is printed too; with a Lagrangian pushing for maximal
sparsity it can land one or two edges short of the functional circuit, depending on where the
multipliers oscillate when the run stops.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.integration

K = 5  # categorical width = n_ctx
FAITHFUL_KL = 1e-4


def build_program():
    from programs.data import ProgramShape
    from programs.discrete import CatHead, DiscreteProgram, MLPTable

    shape = ProgramShape(input_vocab=("BOS", "a", "b", "c"), output_vocab=("x", "y", "z"),
                         n_ctx=K, width=K)
    ident = tuple(range(K))
    heads = (
        # position i reads the token at position n - i (reverse, BOS stays put)
        CatHead(name="attn_0_0", layer=0, index=0, query=1, key=1, value=0,
                predicate=(0, 4, 3, 2, 1), out=2),
        # nothing reads this head and its logit rows are zero: dead, not in the ground truth
        CatHead(name="attn_0_1", layer=0, index=1, query=0, key=0, value=0, predicate=ident,
                out=3),
        # the closest other position holding the same token (self when none): tie-breaks matter
        CatHead(name="attn_1_0", layer=1, index=0, query=0, key=0, value=4, predicate=ident,
                out=5),
    )
    mlps = (MLPTable(name="mlp_0_0", layer=0, index=0, numerical=False, inputs=(0, 2),
                     table=tuple(tuple((a + b) % 3 for b in range(K)) for a in range(K)),
                     out=4),)
    rows = np.random.default_rng(0).normal(0.0, 0.7, (6, K, 3))
    rows[3] = 0.0  # the dead head
    rows[5] = 0.0
    rows[5][:3] = 4.0 * np.eye(3)  # the answer: the MLP value the layer-1 head fetched
    return DiscreteProgram(
        shape=shape, causal=False, n_layers=2,
        cat_vars=("tokens", "positions", "attn_0_0", "attn_0_1", "mlp_0_0", "attn_1_0"),
        num_vars=("ones",), cat_heads=heads, num_heads=(), mlps=mlps, unembed_cat=rows,
        unembed_num=np.zeros((1, 3)), unembed_bias=np.zeros(3))


def smallest_faithful(mm, data, scores: torch.Tensor) -> torch.Tensor:
    """The fewest top-scoring edges (connected to the output) with KL below ``FAITHFUL_KL``."""
    from circuits.evaluate import evaluate_circuit
    from circuits.extract import prune_disconnected

    order = scores.argsort(descending=True)
    for n in range(1, len(order) + 1):
        keep = torch.zeros(len(order), dtype=torch.bool)
        keep[order[:n]] = True
        keep = prune_disconnected(mm.graph, keep)
        if evaluate_circuit(mm, data, keep, ablation="zero").kl < FAITHFUL_KL:
            return keep
    raise AssertionError("even the full graph is not faithful")


def graph_edge(edge) -> str:
    """A ``GroundTruth`` edge as a :mod:`circuits.graph` edge name."""
    from circuits.ground_truth import graph_edge_name
    return graph_edge_name(edge.__dict__)


def pair_data(bridge):
    """Every input (BOS + 4 of a/b/c), each scored at every labelled position."""
    from circuits.datasets import PairDataset
    from circuits.masked_forward import MaskedModel

    body = torch.tensor(list(itertools.product([1, 2, 3], repeat=K - 1)))
    x = torch.cat([torch.zeros(len(body), 1, dtype=torch.long), body], 1)
    clean = x.repeat_interleave(K - 1, 0)
    positions = torch.arange(1, K).repeat(len(x))
    with torch.no_grad():
        answer = MaskedModel(bridge)(clean, positions).argmax(-1)
    perm = torch.randperm(len(clean), generator=torch.Generator().manual_seed(0))
    return x, PairDataset(name="program-ground-truth", clean=clean, corrupted=clean[perm],
                          positions=positions, answer=answer,
                          distractor=torch.full_like(answer, -1))


@pytest.mark.parametrize("seed", [0, 1])
def test_edge_pruning_recovers_compiled_program_circuit(seed):
    from circuits.evaluate import evaluate_circuit
    from circuits.extract import extract
    from circuits.masked_forward import MaskedModel
    from circuits.prune import PruneConfig, prune
    from programs.compile import compile_program
    from programs.discrete import run_discrete

    prog = build_program()
    bridge, truth = compile_program(prog)
    x, data = pair_data(bridge)
    with torch.no_grad():
        assert torch.equal(bridge(x, return_type="logits").argmax(-1),
                           run_discrete(prog, x).predictions)
    mm = MaskedModel(bridge)
    names = mm.graph.edge_names()
    expected = {graph_edge(e) for e in truth.edges}
    match = {graph_edge(e) for e in truth.edges if e.role == "match"}
    assert expected <= set(names)
    assert len(expected) < 0.5 * len(names), "the ground truth should be a sparse circuit"

    # the ground truth is the functional circuit: dropping any one of its edges hurts
    ids = {n: i for i, n in enumerate(names)}
    keep_truth = torch.zeros(len(names), dtype=torch.bool)
    keep_truth[[ids[n] for n in expected]] = True
    assert evaluate_circuit(mm, data, keep_truth, ablation="zero").kl < 1e-6
    for name in sorted(expected):
        cut = keep_truth.clone()
        cut[ids[name]] = False
        assert evaluate_circuit(mm, data, cut, ablation="zero").kl > 1e-3, name

    # target 1.0 asks for maximal sparsity; a slow Lagrangian (small λ lr) lets the KL term
    # hold every edge the output needs
    cfg = PruneConfig(target_sparsity=1.0, steps=1000, lr=0.1, lambda_lr=0.002, lr_warmup=50,
                      ablation="zero", objective="kl", seed=seed)
    res = prune(mm, data, cfg)
    scores = res.log_alpha.detach()
    lowest_true = min(float(scores[ids[n]]) for n in expected)
    highest_other = max(float(scores[i]) for n, i in ids.items() if n not in expected)
    reference = {names[i] for i in extract(mm.graph, res.log_alpha).nonzero().flatten().tolist()}
    print(f"seed {seed}: log alpha lowest truth edge {lowest_true:.2f}, highest other "
          f"{highest_other:.2f}; reference extraction (expected sparsity "
          f"{res.expected_sparsity:.3f}): {len(reference & expected)}/{len(reference)} true, "
          f"missing {sorted(expected - reference)}")
    assert lowest_true > highest_other, "the mask scores do not separate the true circuit"
    keep = smallest_faithful(mm, data, scores)
    found = {names[i] for i in keep.nonzero().flatten().tolist()}
    tp = len(found & expected)
    precision, recall = tp / max(len(found), 1), tp / len(expected)
    match_recall = len(found & match) / len(match)
    ev = evaluate_circuit(mm, data, keep, ablation="zero")
    print(f"seed {seed}: {len(found)}/{len(names)} edges, precision {precision:.3f}, recall "
          f"{recall:.3f}, match recall {match_recall:.3f}, helper edges "
          f"{sorted(found - match)}, KL {ev.kl:.3g}")
    assert found == expected, (sorted(found - expected), sorted(expected - found))
    assert match_recall == 1.0
    assert ev.kl < 1e-6 and ev.exact_match == 1.0
