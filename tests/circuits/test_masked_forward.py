import pytest
import torch

from circuits.graph import Graph, GraphSpec, edge_count
from circuits.masked_forward import MaskedModel
from tests.circuits.conftest import native
from workbench.models import load_hf_bridge


def _check(bridge, seq=7, batch=3):
    torch.manual_seed(0)
    vocab = bridge.cfg.d_vocab
    clean = torch.randint(0, vocab, (batch, seq))
    corrupted = torch.randint(0, vocab, (batch, seq))
    before = bridge(clean)
    mm = MaskedModel(bridge)  # folds norm weights into its own copies, never the bridge's
    ref = bridge(clean)
    assert torch.equal(before, ref)
    abl = mm.writer_outputs(corrupted)
    ones = mm.graph.edge_mask.float()
    assert torch.allclose(mm(clean, edges=ones, ablated=abl), ref, atol=1e-5, rtol=1e-5)
    pos = torch.tensor([seq - 1, 2, 0])[:batch]
    out = mm(clean, pos, edges=ones, ablated=abl)
    assert torch.allclose(out, ref[torch.arange(batch), pos], atol=1e-5, rtol=1e-5)
    # every edge off: the reader inputs are the corrupted run's, so are the logits
    zeros = torch.zeros_like(ones)
    assert torch.allclose(mm(clean, edges=zeros, ablated=abl), bridge(corrupted), atol=1e-5)
    # a real change: turning one edge off moves the logits
    one_off = ones.clone()
    one_off[mm.graph.final_reader, 0] = 0
    assert not torch.allclose(mm(clean, edges=one_off, ablated=abl), ref, atol=1e-5)
    return mm


@pytest.mark.parametrize("kw", [
    dict(normalization_type="LN"),
    dict(normalization_type=None),
    dict(normalization_type="LN", attn_only=True),
    dict(normalization_type="RMS", positional_embedding_type="rotary", act_fn="gelu"),
], ids=["ln", "no-ln", "attn-only", "rms-rotary"])
def test_all_ones_native(kw):
    _check(native(**kw))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_all_ones_hf(hf_dirs, arch):
    bridge = load_hf_bridge(hf_dirs[arch])
    mm = _check(bridge)
    if arch == "llama":  # grouped-query attention: K/V readers per key/value head
        assert mm.graph.spec.n_kv_heads == 2 and "a0.g1.k" in mm.graph.readers


@pytest.mark.parametrize("spec", [
    GraphSpec(n_layers=12, n_heads=12, n_kv_heads=12, has_mlp=True, separate_pos=True),
    GraphSpec(n_layers=4, n_heads=4, n_kv_heads=4, has_mlp=True, separate_pos=True),
    GraphSpec(n_layers=3, n_heads=4, n_kv_heads=2, has_mlp=True, separate_pos=False),
    GraphSpec(n_layers=2, n_heads=1, n_kv_heads=1, has_mlp=False, separate_pos=True),
])
def test_edge_count_formula(spec):
    g = Graph(spec)
    assert g.n_edges == edge_count(spec) == len(set(g.edge_names()))
    # every edge goes from an upstream writer to a reader
    for name in g.edge_names()[:200]:
        w, r = name.split("->")
        assert g.writers.index(w) < g.reader_upto(g.readers.index(r))


def test_gpt2_small_edge_count():
    spec = GraphSpec(n_layers=12, n_heads=12, n_kv_heads=12, has_mlp=True, separate_pos=True)
    assert edge_count(spec) == 32936  # "~32.9k edges with separate embedding nodes"
