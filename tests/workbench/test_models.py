"""The model layer: configs, native module ↔ bridge equivalence, fast forward, HF loading."""

from __future__ import annotations

import pytest
import torch

from workbench.checkpoint import load_checkpoint, save_checkpoint, weights_sha256
from workbench.errors import UserError
from workbench.fast_forward import logits_at
from workbench.models import ModelConfig, build_native, load_hf_bridge, to_bridge, wrap_nnsight

SMALL = dict(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=11, d_vocab_out=7,
             n_ctx=6)


@pytest.mark.parametrize("variant", [
    {}, {"normalization_type": "LN"}, {"attn_only": True}, {"act_fn": "gelu"},
    {"attention_dir": "bidirectional", "normalization_type": "RMS"}, {"n_layers": 1},
])
def test_fast_forward_matches_bridge(variant):
    cfg = ModelConfig(**{**SMALL, **variant})
    native = build_native(cfg)
    bridge = to_bridge(cfg, native.state_dict())
    tokens = torch.randint(0, cfg.d_vocab, (5, cfg.n_ctx))
    with torch.no_grad():
        full = bridge(tokens)  # [batch, pos, vocab_out]
        assert torch.allclose(native(tokens), full, atol=1e-6)
        pos = torch.tensor([1, 5])
        assert torch.allclose(logits_at(native, tokens, pos), full[:, pos], atol=1e-5)
        assert torch.allclose(logits_at(native, tokens), full, atol=1e-5)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_fast_forward_gradients_match_full_forward(n_layers):
    # the trainer differentiates logits_at; its gradients must be the full forward's
    cfg = ModelConfig(**{**SMALL, "n_layers": n_layers})
    native = build_native(cfg)
    tokens = torch.randint(0, cfg.d_vocab, (5, cfg.n_ctx))
    pos = torch.tensor([cfg.n_ctx - 1])
    grads = []
    for logits in (lambda: native(tokens)[:, pos], lambda: logits_at(native, tokens, pos)):
        native.zero_grad()
        logits().logsumexp(-1).sum().backward()
        grads.append({n: p.grad.clone() for n, p in native.named_parameters()})
    for name, grad in grads[0].items():
        assert torch.allclose(grads[1][name], grad, atol=1e-5), name


def test_init_is_seeded_and_leaves_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_native(ModelConfig(**SMALL, init_seed=1))
    after = torch.rand(1)
    b = build_native(ModelConfig(**SMALL, init_seed=1))
    c = build_native(ModelConfig(**SMALL, init_seed=2))
    assert torch.equal(before, after)
    assert weights_sha256(a.state_dict()) == weights_sha256(b.state_dict())
    assert weights_sha256(a.state_dict()) != weights_sha256(c.state_dict())


def test_checkpoint_roundtrip_gives_identical_logits(tmp_path):
    cfg = ModelConfig(**SMALL)
    native = build_native(cfg)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, native.state_dict(), {"model": cfg.to_dict()})
    state, meta = load_checkpoint(path)
    bridge = to_bridge(ModelConfig.from_dict(meta["model"]), state)
    tokens = torch.randint(0, cfg.d_vocab, (4, cfg.n_ctx))
    with torch.no_grad():
        assert torch.equal(bridge(tokens), native(tokens))
    logits, cache = bridge.run_with_cache(tokens)
    assert cache["blocks.1.attn.hook_pattern"].shape == (4, 4, 6, 6)
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_config_values_name_the_field():
    with pytest.raises(UserError, match="d_model"):
        ModelConfig(**{**SMALL, "d_model": -3})
    with pytest.raises(UserError, match="act_fn"):
        ModelConfig(**SMALL, act_fn="tanh")
    with pytest.raises(UserError, match="unknown model config keys"):
        ModelConfig.from_dict({**SMALL, "bogus": 1})


def test_nnsight_wrapper_traces_bridge():
    cfg = ModelConfig(**SMALL)
    bridge = to_bridge(cfg, build_native(cfg).state_dict())
    model = wrap_nnsight(bridge)
    tokens = torch.randint(0, cfg.d_vocab, (2, cfg.n_ctx))
    with model.trace(tokens):
        resid = model.blocks[0].hook_resid_post.output.save()
    assert resid.shape == (2, cfg.n_ctx, cfg.d_model)


def test_hf_directory_loads_offline_with_same_logits(tmp_path, save_tiny_gpt2):
    hf = save_tiny_gpt2(tmp_path / "gpt2-tiny")
    bridge = load_hf_bridge(tmp_path / "gpt2-tiny")
    tokens = torch.tensor([[2, 5, 7, 9, 11]])
    with torch.no_grad():
        expected = hf(tokens).logits
        got = bridge(tokens)
    assert torch.allclose(got, expected, atol=1e-4)


def test_hf_directory_errors(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_hf_bridge(tmp_path)
