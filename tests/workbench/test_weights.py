"""TransformerLens-format weights from every face of a model (native module, bridge, state dict,
a Hugging Face GPT-2 directory), and the forwards and analyses built on them checked against
the bridge's own forward (``run_with_cache``)."""

import math

import pytest
import torch

from workbench.activations import ACTIVATIONS, activation
from workbench.errors import UserError
from workbench.fast_forward import logits_at
from workbench.models import ModelConfig, build_native, load_hf_bridge, to_bridge
from workbench.weights import (ModelWeights, linear_bias, linear_weight, model_weights,
                               state_dict_weights)

VARIANTS = [
    dict(n_layers=1, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=14, d_vocab_out=13,
         n_ctx=3),
    dict(normalization_type="LN", act_fn="gelu"),
    dict(normalization_type="RMS", act_fn="silu", attention_dir="bidirectional"),
    dict(normalization_type="LNPre", attn_only=True),
    dict(normalization_type="RMS", positional_embedding_type="rotary", act_fn="gelu_new"),
]


def config(variant: dict) -> ModelConfig:
    base = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=48, d_vocab=14,
                d_vocab_out=12, n_ctx=8, init_seed=3)
    return ModelConfig(**{**base, **variant})


def same(a, b) -> bool:
    """Equal tensors; a missing bias equals an all-zero one (bridges report zeros)."""
    if a is None or b is None:
        other = b if a is None else a
        return other is None or not bool(other.any())
    return a.shape == b.shape and torch.equal(a.detach(), b.detach())


def assert_same_weights(x: ModelWeights, y: ModelWeights) -> None:
    assert x.n_layers == y.n_layers
    for name in ("n_heads", "n_kv_heads", "d_head", "act_fn", "normalization_type",
                 "positional_embedding_type", "causal"):
        assert getattr(x, name) == getattr(y, name), name
    for name in ("W_E", "W_pos", "W_U", "b_U"):
        assert same(getattr(x, name), getattr(y, name)), name
    for bx, by in zip(x.blocks, y.blocks):
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out",
                     "b_in", "b_out"):
            assert same(getattr(bx, name), getattr(by, name)), name
        assert bx.attn_scale == by.attn_scale and bx.score_scale == by.score_scale
        for nx, ny in ((bx.ln1, by.ln1), (bx.ln2, by.ln2)):
            assert (nx is None) == (ny is None)
            if nx is not None:
                assert nx.kind == ny.kind and nx.eps == ny.eps
                assert same(nx.weight, ny.weight) and same(nx.bias, ny.bias)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_face_of_a_native_model_gives_the_same_weights(variant):
    cfg = config(variant)
    native = build_native(cfg)
    state = native.state_dict()
    from_native = model_weights(native)
    assert_same_weights(from_native, model_weights(to_bridge(cfg, state)))
    assert_same_weights(from_native, state_dict_weights(
        state, n_heads=cfg.n_heads, act_fn=cfg.act_fn,
        normalization_type=cfg.normalization_type, attention_dir=cfg.attention_dir))
    assert from_native.stacked("W_Q").shape == (cfg.n_layers, cfg.n_heads, cfg.d_model,
                                                cfg.d_head)
    if cfg.positional_embedding_type == "rotary":
        bridge_rope = model_weights(to_bridge(cfg, state)).rotary.tables(5, "cpu", torch.float32)
        native_rope = from_native.rotary.tables(5, "cpu", torch.float32)
        assert all(torch.equal(a, b) for a, b in zip(bridge_rope[:2], native_rope[:2]))


def test_native_weights_are_views_of_the_parameters_in_their_own_layout():
    native = build_native(config(dict(normalization_type="LN")))
    w = model_weights(native)
    attn, mlp = native.layers[0].attn, native.layers[0].mlp
    for tl, param in ((linear_weight(w.blocks[0].W_Q, "qkv"), attn.q.weight),
                      (linear_weight(w.blocks[0].W_O, "o"), attn.o.weight),
                      (linear_weight(w.blocks[0].W_in, "in"), mlp.fc_in.weight),
                      (linear_bias(w.blocks[0].b_V), attn.v.bias)):
        assert tl.data_ptr() == param.data_ptr() and tl.stride() == param.stride()
        assert torch.equal(tl, param)
    w.blocks[0].W_K.sum().backward()  # gradients reach the parameter through the view
    assert torch.equal(attn.k.weight.grad, torch.ones_like(attn.k.weight))


@pytest.mark.parametrize("variant", VARIANTS)
def test_fast_forward_reads_the_same_weights_from_the_module_and_its_bridge(variant):
    cfg = config(variant)
    native = build_native(cfg).eval()
    bridge = to_bridge(cfg, native.state_dict())
    tokens = torch.randint(0, cfg.d_vocab, (6, cfg.n_ctx), generator=torch.Generator()
                           .manual_seed(0))
    pos = torch.tensor([cfg.n_ctx - 1])
    with torch.no_grad():
        ours = logits_at(native, tokens, pos)
        assert torch.equal(ours, logits_at(bridge, tokens, pos))
        reference, _ = bridge.run_with_cache(tokens)
    assert torch.allclose(ours, reference[:, pos], atol=1e-5)


@pytest.fixture
def gpt2_bridge(tmp_path, save_tiny_gpt2):
    words = ["0", "1", "="] + [f"w{i}" for i in range(20)]
    save_tiny_gpt2(tmp_path / "gpt2", words, n_layer=2)
    return load_hf_bridge(tmp_path / "gpt2")


def test_weights_of_a_hugging_face_gpt2_reproduce_its_forward(gpt2_bridge):
    w = model_weights(gpt2_bridge)
    cfg = gpt2_bridge.cfg
    assert (w.normalization_type, w.positional_embedding_type, w.act_fn) == ("LN", "standard",
                                                                             "gelu_new")
    assert w.stacked("W_Q").shape == (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_head)
    assert w.W_pos.shape == (cfg.n_ctx, cfg.d_model) and w.ln_final.kind == "LN"
    tokens = torch.randint(3, cfg.d_vocab, (4, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, cache = gpt2_bridge.run_with_cache(tokens)
        assert torch.allclose(logits_at(gpt2_bridge, tokens), reference, atol=1e-4)
        # the MLP of block 0 from the weights alone, fed the cached residual
        b = w.blocks[0]
        resid = cache["blocks.0.hook_resid_mid"]
        pre = b.ln2(resid) @ b.W_in + b.b_in
        assert torch.allclose(pre, cache["blocks.0.mlp.hook_pre"], atol=1e-4)
        assert torch.allclose(w.act(pre), cache["blocks.0.mlp.hook_post"], atol=1e-4)


def test_parity_analysis_runs_on_a_hugging_face_gpt2(gpt2_bridge):
    from workbench.fourier.parity_analysis import analyze_parity_model, collect_parity

    vocab = gpt2_bridge.tokenizer.get_vocab()
    bits, query = (vocab["0"], vocab["1"]), vocab["="]
    report = analyze_parity_model(gpt2_bridge, n=6, k=2, bit_tokens=bits, query_token=query,
                                  classes=bits)
    assert report.exact and len(report.coordinate_scores) == 6
    assert len(report.neuron_parity_share) == gpt2_bridge.cfg.d_mlp
    assert 0.0 <= report.hidden_progress <= 1.0 and math.isfinite(report.detection_margin)
    acts = collect_parity(gpt2_bridge, 6, bit_tokens=bits, query_token=query, classes=bits)
    tokens = torch.cat([torch.tensor(bits)[acts.inputs], torch.full((64, 1), query)], dim=1)
    logits, cache = gpt2_bridge.run_with_cache(tokens)
    assert torch.allclose(acts.neurons, cache["blocks.0.mlp.hook_post"][:, -1].double(),
                          atol=1e-6)
    assert torch.allclose(acts.output, (logits[:, -1, bits[1]] - logits[:, -1, bits[0]])
                          .double(), atol=1e-5)
    with pytest.raises(UserError, match="n_heads"):
        analyze_parity_model(gpt2_bridge, n=6, k=2, n_heads=3, bit_tokens=bits,
                             query_token=query, classes=bits)


def test_modular_collection_matches_the_bridge_forward_from_every_face():
    from workbench.fourier.collect import collect_modular, modular_weights

    p = 11
    cfg = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=24, d_vocab=p + 1, d_vocab_out=p,
                      init_seed=3)
    native = build_native(cfg)
    with torch.no_grad():  # make every parameter matter, biases included
        for t in native.parameters():
            t.normal_(0, 0.5)
    state = native.state_dict()
    bridge = to_bridge(cfg, state)
    from_state = collect_modular(state, p, n_heads=2)
    for model in (bridge, native):  # the same weights, so the same numbers exactly
        acts = collect_modular(model, p)
        assert torch.equal(acts.neurons, from_state.neurons)
        assert torch.equal(acts.logits, from_state.logits)
        assert torch.equal(modular_weights(model).w_l, modular_weights(state).w_l)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    tokens = torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p)], dim=1)
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens, names_filter=["blocks.0.mlp.hook_post"])
    assert torch.allclose(from_state.logits.reshape(p * p, p), logits[:, -1], atol=1e-4)
    assert torch.allclose(from_state.neurons.reshape(p * p, -1),
                          cache["blocks.0.mlp.hook_post"][:, -1], atol=1e-4)
    with pytest.raises(UserError, match="1-layer"):
        collect_modular(to_bridge(ModelConfig(**{**cfg.to_dict(), "n_layers": 2})), p)
    with pytest.raises(UserError, match="LayerNorm-free"):
        collect_modular(to_bridge(ModelConfig(**{**cfg.to_dict(), "normalization_type": "LN"})),
                        p)
    with pytest.raises(UserError, match="act_fn"):
        collect_modular(bridge, p, act_fn="gelu")


def test_one_activation_table_matches_the_native_models():
    from transformer_lens.model_bridge.sources.native.model import _ACTIVATIONS as native_acts

    x = torch.linspace(-4, 4, 101)
    for name, fn in ACTIVATIONS.items():
        if name in native_acts:
            assert torch.equal(fn(x), native_acts[name](x)), name
    assert activation("GELU_NEW") is ACTIVATIONS["gelu_new"]
    with pytest.raises(UserError, match="act_fn must be one of"):
        activation("solu")
    with pytest.raises(UserError, match="pass a TransformerBridge"):
        model_weights(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="normalization"):
        state_dict_weights(build_native(config(dict(normalization_type="LN"))).state_dict(),
                           n_heads=4)


def test_a_native_module_as_a_bridge_computes_exactly_what_the_module_computes():
    from workbench.fourier.parity_analysis import collect_parity
    from workbench.models import as_bridge

    cfg = config(dict(normalization_type="LN", d_vocab=3, d_vocab_out=2, n_ctx=7))
    native = build_native(cfg).eval()
    bridge = as_bridge(native)
    assert as_bridge(bridge) is bridge and bridge.original_model is not native  # a copy
    tokens = torch.randint(0, 3, (16, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(bridge(tokens), native(tokens))
        acts = collect_parity(native, 6)
        table = torch.tensor([0, 1])
        logits = native(torch.cat([table[acts.inputs], torch.full((64, 1), 2)], dim=1))[:, -1]
    assert torch.equal(acts.output, (logits[:, 1] - logits[:, 0]).double())
    with pytest.raises(UserError, match="TransformerBridge or a native model"):
        as_bridge(torch.nn.Linear(2, 2))
