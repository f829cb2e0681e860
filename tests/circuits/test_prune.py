import math

import pytest
import torch

from circuits import masks
from circuits.evaluate import evaluate_circuit
from circuits.extract import extract, prune_disconnected, threshold_for_sparsity
from circuits.graph import Graph, GraphSpec
from circuits.masked_forward import MaskedModel
from circuits.prune import PruneConfig, prune
from tests.circuits.conftest import TRUE_CIRCUIT, hand_built_bridge, hand_built_data
from workbench.errors import UserError


def test_hard_concrete_statistics():
    gen = torch.Generator().manual_seed(0)
    la = masks.init_log_alpha(10_000, gen).detach()
    assert abs(float(la.mean()) - 10) < 0.01 and abs(float(la.std()) - 0.01) < 0.002
    # log alpha = 0: samples in [0, 1], P(z = 0) = P(z = 1) = P(s < 1/12), mean 0.5
    zero = torch.zeros(200_000)
    z = masks.sample(zero, gen)
    assert float(z.min()) >= 0 and float(z.max()) <= 1
    p_edge = torch.sigmoid(torch.tensor(masks.BETA * math.log(1 / 11)))  # P(s < 1/12)
    assert abs(float((z == 0).float().mean()) - float(p_edge)) < 0.005
    assert abs(float((z == 1).float().mean()) - float(p_edge)) < 0.005
    assert abs(float(z.mean()) - 0.5) < 0.005
    # expected L0 = P(z > 0), checked by Monte Carlo at several log alphas
    for value in (-2.0, 0.5, 3.0):
        la = torch.full((200_000,), value)
        mc = float((masks.sample(la, gen) > 0).float().mean())
        assert abs(mc - float(masks.expected_l0(la[:1]))) < 0.005
    # initialised gates are on
    assert float((masks.sample(masks.init_log_alpha(1000, gen), gen) == 1).float().mean()) == 1


def test_extraction_hits_target_sparsity():
    g = Graph(GraphSpec(n_layers=3, n_heads=4, n_kv_heads=4, has_mlp=True, separate_pos=True))
    scores = torch.rand(g.n_edges, generator=torch.Generator().manual_seed(0))
    for target in (0.0, 0.5, 0.9, 0.97):
        _, keep = threshold_for_sparsity(g, scores, target, prune=False)
        assert abs((1 - keep.float().mean()) - target) <= 1 / g.n_edges + 1e-9
        _, keep = threshold_for_sparsity(g, scores, target)
        assert abs((1 - keep.float().mean()) - target) < 0.03
        assert torch.equal(prune_disconnected(g, keep), keep)  # already connected
    # default target: the gates' expected sparsity
    la = torch.where(torch.rand(g.n_edges) < 0.8, -10.0, 10.0)
    keep = extract(g, la, prune=False)
    assert abs(float(1 - keep.float().mean()) - float(masks.expected_sparsity(la))) < 0.01


def test_prune_disconnected_drops_dangling_edges():
    g = Graph(GraphSpec(n_layers=2, n_heads=1, n_kv_heads=1, has_mlp=False, separate_pos=False))
    names = g.edge_names()
    keep = torch.zeros(g.n_edges, dtype=torch.bool)
    for n in ("tok_embed->a0.g0.v", "a0.h0->logits", "tok_embed->a1.h0.q"):
        keep[names.index(n)] = True
    kept = {n for n, k in zip(names, prune_disconnected(g, keep)) if k}
    # a1.h0 is fed but writes nowhere kept: its input edge goes
    assert kept == {"tok_embed->a0.g0.v", "a0.h0->logits"}


def test_bad_sparsity():
    for bad in (-0.1, 1.6, "x"):
        with pytest.raises(UserError, match="target-sparsity"):
            PruneConfig(target_sparsity=bad)


def test_ground_truth_recovery_and_determinism():
    bridge = hand_built_bridge()
    mm = MaskedModel(bridge)
    data = hand_built_data()
    cfg = PruneConfig(target_sparsity=1.05, steps=300, lr_warmup=20, batch_size=32,
                      log_every=100, seed=3)
    logs = []
    res = prune(mm, data, cfg, on_log=lambda s, m: logs.append((s, m)))
    assert [s for s, _ in logs] == [100, 200, 300]
    keep = extract(mm.graph, res.log_alpha)
    found = {n for n, k in zip(mm.graph.edge_names(), keep) if k}
    precision = len(found & TRUE_CIRCUIT) / max(len(found), 1)
    recall = len(found & TRUE_CIRCUIT) / len(TRUE_CIRCUIT)
    assert (precision, recall) == (1.0, 1.0), found
    ev = evaluate_circuit(mm, data, keep)
    assert ev.kl < 1e-6 and ev.exact_match == 1.0 and ev.n_edges == 3
    # a wrong circuit is unfaithful (the evaluation can fail)
    wrong = keep.clone()
    wrong[mm.graph.edge_id("a1.h0->logits")] = False
    assert evaluate_circuit(mm, data, wrong).kl > 0.1
    # same seed, same masks
    again = prune(mm, data, PruneConfig(**{**cfg.to_json(), "steps": 20}))
    twice = prune(mm, data, PruneConfig(**{**cfg.to_json(), "steps": 20}))
    assert torch.equal(again.log_alpha, twice.log_alpha)


def test_node_masks_and_zero_ablation_run():
    mm = MaskedModel(hand_built_bridge())
    data = hand_built_data(32)
    for kw in (dict(node_masks=True, node_target_sparsity=0.5), dict(ablation="zero"),
               dict(ablation="mean"), dict(objective="logit-diff")):
        res = prune(mm, data, PruneConfig(steps=5, batch_size=16, log_every=5, **kw))
        assert torch.isfinite(res.log_alpha).all()
        assert set(res.final) >= {"loss", "sparsity", "lambda1", "lambda2"}


def test_bf16_autocast_and_gradient_checkpointing_recover_the_circuit():
    # the GPU memory savers, exercised on CPU (bf16 autocast exists there too)
    mm = MaskedModel(hand_built_bridge())
    data = hand_built_data()
    cfg = PruneConfig(target_sparsity=1.05, steps=300, lr_warmup=20, batch_size=32,
                      log_every=100, seed=3, precision="bf16", checkpoint=True)
    res = prune(mm, data, cfg)
    keep = extract(mm.graph, res.log_alpha)
    found = {n for n, k in zip(mm.graph.edge_names(), keep) if k}
    assert found == TRUE_CIRCUIT
    with pytest.raises(UserError, match="precision"):
        PruneConfig(precision="fp8")
