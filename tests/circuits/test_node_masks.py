"""Edge Pruning's optional node masks (a gate per writer, trained with the edge gates): the
search switches off the writers the output does not need, extraction drops every edge of a
writer whose gate is off, and ``discover --node-masks`` reports them."""

import json

import pytest
import torch

from circuits.evaluate import evaluate_circuit
from circuits.extract import extract, extract_nodes
from circuits.graph import Graph, GraphSpec
from circuits.masked_forward import MaskedModel
from circuits.prune import PruneConfig, prune
from tests.circuits.conftest import TRUE_CIRCUIT, hand_built_bridge, hand_built_data

# the hand-built model's writers that the output does not read (see hand_built_weights)
IDLE_WRITERS = {"pos_embed", "a0.h1", "a1.h1"}


def test_extraction_drops_every_edge_of_a_writer_whose_gate_is_off():
    g = Graph(GraphSpec(n_layers=2, n_heads=2, n_kv_heads=2, has_mlp=True, separate_pos=True))
    edge_la = torch.full((g.n_edges,), 10.0)  # every edge gate on
    node_la = torch.full((len(g.writers),), 10.0)
    off = {"a0.h1", "m0"}
    for i, w in enumerate(g.writers):
        if w in off:
            node_la[i] = -10.0
    assert {w for w, on in zip(g.writers, extract_nodes(node_la)) if not on} == off
    # the default target is the joint expected sparsity: here the removed writers' edge share
    keep = extract(g, edge_la, node_log_alpha=node_la, prune=False)
    writers = g.edge_index[:, 1].tolist()
    assert keep.tolist() == [g.writers[w] not in off for w in writers]
    # connected: the edges into the removed writers go too (they lead nowhere)
    keep = extract(g, edge_la, node_log_alpha=node_la)
    kept = [n for n, k in zip(g.edge_names(), keep) if k]
    feeds = {"a0.h1": ("a0.h1.q", "a0.g1.k", "a0.g1.v"), "m0": ("m0.in",)}
    assert kept and not [n for n in kept if n.split("->")[0] in off
                         or n.split("->")[1] in feeds["a0.h1"] + feeds["m0"]]
    # without node masks the same edge gates keep everything
    assert bool(extract(g, edge_la).all())


def test_cutting_a_writers_edges_is_masking_its_node():
    mm = MaskedModel(hand_built_bridge())
    data = hand_built_data(32)
    g = mm.graph
    on = torch.tensor([w != "a0.h0" for w in g.writers])
    keep = on[g.edge_index[:, 1]]
    cut = evaluate_circuit(mm, data, keep)
    masked = evaluate_circuit(mm, data, torch.ones(g.n_edges, dtype=torch.bool),
                              nodes=on.float())
    assert cut.kl == pytest.approx(masked.kl, abs=1e-6) and cut.kl > 1e-3
    assert cut.accuracy == masked.accuracy


def test_node_masks_switch_off_the_idle_writers_and_keep_the_circuit():
    mm = MaskedModel(hand_built_bridge())
    data = hand_built_data()
    cfg = PruneConfig(target_sparsity=1.05, steps=300, lr_warmup=20, batch_size=32,
                      log_every=100, seed=3, node_masks=True, node_target_sparsity=0.5,
                      lr=0.3, lambda_lr=0.05)  # six node gates: a gentler ascent than 0.8
    res = prune(mm, data, cfg)
    assert res.node_log_alpha is not None and res.node_log_alpha.shape == (len(mm.graph.writers),)
    assert "node_sparsity" in res.final
    off = {w for w, o in zip(mm.graph.writers, extract_nodes(res.node_log_alpha)) if not o}
    assert off == IDLE_WRITERS
    keep = extract(mm.graph, res.log_alpha, node_log_alpha=res.node_log_alpha)
    assert {n for n, k in zip(mm.graph.edge_names(), keep) if k} == TRUE_CIRCUIT


def test_discover_with_node_masks_reports_the_removed_writers(home, tmp_path, capsys):
    from circuits.io import load_circuit
    from tests.circuits.conftest import save_hand_built_run
    from workbench.cli import main

    _, task = save_hand_built_run(home, tmp_path)
    code = main(["circuits", "discover", "--model", "hand-built", "--task", str(task),
                 "--steps", "300", "--target-sparsity", "1.05", "--examples", "64",
                 "--lr", "0.3", "--lambda-lr", "0.05", "--batch-size", "32",
                 "--node-masks", "--node-target-sparsity", "0.5", "--seed", "3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    circuit = load_circuit(out["paths"]["json"])
    removed = set(circuit.meta["nodes_removed"])
    assert removed == IDLE_WRITERS
    assert circuit.edges and not [e for e in circuit.edges if e.split("->")[0] in removed]
    # re-extracting at a lower sparsity (the widget's and page's slider) keeps them out too
    from circuits.explore import load_stored, reextract
    stored = load_stored(out["run_id"])
    denser = reextract(stored, 0.0)
    assert len(denser.edges) > len(circuit.edges)
    assert not [e for e in denser.edges if e.split("->")[0] in removed]
    assert main(["circuits", "discover", "--model", "hand-built", "--task", str(task),
                 "--method", "eap", "--node-masks"]) == 2
    assert "node masks" in capsys.readouterr().err
