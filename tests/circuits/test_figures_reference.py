"""Reference figure: Edge Pruning on an in-house induction model recovers the previous-token
head → induction head K-composition edge (Olsson et al. 2022; Bhaskar et al. 2024).

A 2-layer attention-only transformer (no LayerNorm, 2 heads of 32) is trained on the
``induction`` task (letter/number pairs then a query letter; ~20 s on one thread). The heads are
identified from attention patterns alone, on the clean pairs the search uses:

- previous-token head: the layer-0 head putting the most attention on position − 1;
- induction head: the layer-1 head attending most, from the query letter, to the token right
  after the letter's previous occurrence (the number to copy).

The induction head can only find that token if its *key* carries the previous token, which the
previous-token head writes: the edge ``a0.h{prev} -> a1.g{ind}.k``. Edge Pruning (corrupted
ablation, KL objective) must keep it, the circuit must be sparse and faithful, and removing the
edge from the circuit must hurt.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.reference, pytest.mark.integration]

# the same model as benchmarks/circuits_faithfulness.py
INDUCTION_OVERRIDES = {"attn_only": True, "n_layers": 2, "normalization_type": None,
                       "d_model": 64, "n_heads": 2, "d_head": 32, "steps": 400, "lr": 3e-3,
                       "n_samples": 4000, "eval_every": 100, "checkpoint_every": 10_000,
                       "warmup_steps": 50}


def head_scores(bridge, data) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous-token score of each layer-0 head, induction score of each layer-1 head)."""
    with torch.no_grad():
        _, cache = bridge.run_with_cache(data.clean)
    p0 = cache["blocks.0.attn.hook_pattern"]  # [batch, head, query, key]
    p1 = cache["blocks.1.attn.hook_pattern"]
    q = torch.arange(1, p0.shape[2])
    prev = p0[:, :, q, q - 1].mean((0, 2))  # [head]
    rows = []
    for i in range(len(data)):
        pos = int(data.positions[i])
        seq = data.clean[i].tolist()
        earlier = max(j for j in range(1, pos) if seq[j] == seq[pos])
        rows.append(p1[i, :, pos, earlier + 1])  # [head]
    return prev, torch.stack(rows).mean(0)


def test_edge_pruning_finds_the_k_composition_edge(tmp_path):
    from circuits.api import discover
    from circuits.datasets import make_pairs
    from circuits.evaluate import evaluate_circuit
    from circuits.explore import load_stored
    from circuits.masked_forward import MaskedModel
    from circuits.target import load_target
    from training.api import train
    from workbench.store import RunStore

    torch.set_num_threads(1)
    store = RunStore(tmp_path / "home")
    model = train("induction", preset="tiny", overrides=INDUCTION_OVERRIDES, store=store)
    assert model.test_acc > 0.95, "the model did not learn the task"

    target = load_target(model.run_id, store)
    data = make_pairs("induction", target, 256, 0)
    prev, ind = head_scores(target.bridge, data)
    p_head, i_head = int(prev.argmax()), int(ind.argmax())
    assert prev[p_head] > 0.4, f"no previous-token head in layer 0: {prev.tolist()}"
    assert ind[i_head] > 0.5, f"no induction head in layer 1: {ind.tolist()}"

    res = discover(model.run_id, "induction", target_sparsity=0.7, steps=1500,
                   n_examples=256, store=store, data=data)
    circuit = load_stored(res.run_id, store).circuit
    k_edge = f"a0.h{p_head}->a1.g{i_head}.k"
    print(f"prev-token scores {prev.tolist()}, induction scores {ind.tolist()}; circuit "
          f"{res.n_edges}/{res.total_edges} edges, KL {res.kl:.3g}: {sorted(circuit.edges)}")
    assert k_edge in circuit.edges
    assert res.sparsity >= 0.5, "the circuit is not sparse"
    mm = MaskedModel(target.bridge)
    keep = circuit.keep_mask()
    empty = evaluate_circuit(mm, data, torch.zeros_like(keep))
    # faithful relative to ablating everything (the model has two induction heads; a sparse
    # circuit may keep one, so its KL to the full model is small but not zero)
    assert res.kl < 0.2 * empty.kl, (res.kl, empty.kl)
    assert res.accuracy > 0.9, res.accuracy

    # the edge matters: cutting it from the circuit raises the KL
    cut = keep.clone()
    cut[circuit.graph.edge_id(k_edge)] = False
    without = evaluate_circuit(mm, data, cut)
    assert without.kl > res.kl + 0.1, (without.kl, res.kl)
