import torch

from circuits.baselines import acdc, eap_scores
from circuits.compare import compare
from circuits.extract import threshold_for_sparsity
from circuits.io import from_mask, load_circuit, to_networkx, write_circuit
from circuits.masked_forward import MaskedModel
from tests.circuits.conftest import TRUE_CIRCUIT, hand_built_bridge, hand_built_data


def _edges(mm, keep):
    return {n for n, k in zip(mm.graph.edge_names(), keep) if k}


def test_eap_ranks_true_edges_first():
    mm = MaskedModel(hand_built_bridge())
    data = hand_built_data(32)
    scores = eap_scores(mm, data)
    top = set(torch.topk(scores, 3).indices.tolist())
    assert {mm.graph.edge_names()[i] for i in top} == TRUE_CIRCUIT
    # EAP equals the explicit first-order formula (x_ablated - x) . dL/d(reader input) for
    # the final read: perturbing one edge's mask by eps changes the loss by eps * grad
    e = mm.graph.edge_id("a1.h0->logits")
    assert scores[e] > 0 and scores[mm.graph.edge_id("tok_embed->logits")] < 1e-6


def test_acdc_recovers_true_circuit():
    mm = MaskedModel(hand_built_bridge())
    keep, score = acdc(mm, hand_built_data(32), threshold=1e-4)
    assert _edges(mm, keep) == TRUE_CIRCUIT
    keep2 = threshold_for_sparsity(mm.graph, score, 1 - 3 / mm.graph.n_edges)[1]
    assert _edges(mm, keep2) == TRUE_CIRCUIT


def test_io_roundtrip_and_compare(tmp_path):
    mm = MaskedModel(hand_built_bridge())
    names = mm.graph.edge_names()
    keep = torch.tensor([n in TRUE_CIRCUIT for n in names])
    c = from_mask(mm.graph, keep, torch.rand(len(names)), {"kl": 0.0}, {"method": "x"})
    paths = write_circuit(c, tmp_path, log_alpha=torch.zeros(len(names)))
    back = load_circuit(paths["json"])
    assert set(back.edges) == TRUE_CIRCUIT and torch.equal(back.keep_mask(), keep)
    import networkx as nx
    g = nx.read_graphml(paths["graphml"])
    assert g.has_edge("a0.h0", "a1.g0.v") and g.has_edge("a1.g0.v", "a1.h0")
    assert "digraph" in open(paths["dot"]).read()
    other = keep.clone()
    other[names.index("tok_embed->logits")] = True
    cmp = compare(back, from_mask(mm.graph, other))
    assert (cmp.shared, cmp.n_a, cmp.n_b) == (3, 3, 4) and abs(cmp.jaccard - 0.75) < 1e-9
    assert abs(cmp.chance_shared - 3 * 4 / mm.graph.n_edges) < 1e-9
    assert nx.is_directed_acyclic_graph(to_networkx(back))
