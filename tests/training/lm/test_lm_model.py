"""The decoder and its Hugging Face export: GPT-2 and Llama styles, tied and untied, give the
same logits as ``AutoModelForCausalLM`` and as the TransformerBridge booted from the export;
the export round-trips exactly; bad architecture combinations are refused."""

from __future__ import annotations

import pytest
import torch

from training.lm.config import LMModelConfig, PRESETS, PretrainConfig, apply_overrides, \
    preset_sections
from training.lm.hf_export import from_hf_state, read_hf_dir, to_hf_state, write_hf_dir
from training.lm.model import build_model
from training.lm.tokenizer import train_tokenizer
from training.lm.trainer import lr_at
from workbench.errors import UserError

STYLES = {
    "gpt2-tied": dict(positions="learned", norm="layernorm", mlp="gelu", bias=True,
                      tie_embeddings=True),
    "gpt2-untied": dict(positions="learned", norm="layernorm", mlp="gelu", bias=True,
                        tie_embeddings=False),
    "llama-untied": dict(positions="rotary", norm="rmsnorm", mlp="swiglu", bias=False,
                         tie_embeddings=False),
    "llama-tied": dict(positions="rotary", norm="rmsnorm", mlp="swiglu", bias=False,
                       tie_embeddings=True),
}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([f"{a} + {b} = {a + b}" for a in range(30) for b in range(30)], 300)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_export_logits_equal_hf_and_bridge(tmp_path, tokenizer, style):
    transformers = pytest.importorskip("transformers")
    from workbench.models import load_hf_bridge

    cfg = LMModelConfig(vocab_size=320, n_ctx=32, n_layers=2, d_model=32, n_heads=4, d_mlp=64,
                        init_seed=3, **STYLES[style])
    model = build_model(cfg).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a swapped name would show
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    directory = write_hf_dir(tmp_path / "hf", cfg, model.state_dict(), tokenizer, {"step": 0})
    tokens = torch.randint(0, 320, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(tokens)  # [batch, pos, vocab]
        hf = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()(tokens).logits
        bridge = load_hf_bridge(directory)(tokens)
    assert torch.allclose(ours, hf, atol=1e-5), (ours - hf).abs().max()
    assert torch.allclose(ours, bridge, atol=1e-4), (ours - bridge).abs().max()
    back_cfg, back_state, meta = read_hf_dir(directory)
    assert back_cfg == cfg and meta["step"] == 0
    for k, v in model.state_dict().items():
        assert torch.equal(back_state[k], v), k  # exact round trip
    again = from_hf_state(cfg, to_hf_state(cfg, model.state_dict()))
    assert all(torch.equal(again[k], v) for k, v in model.state_dict().items())


def test_initialisation_is_seeded_and_leaves_global_rng_alone():
    cfg = LMModelConfig(init_seed=1)
    state = torch.get_rng_state()
    a, b = build_model(cfg).state_dict(), build_model(cfg).state_dict()
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = build_model(LMModelConfig(init_seed=2)).state_dict()
    assert not torch.equal(a["embed.weight"], c["embed.weight"])


def test_mixed_architecture_and_bad_keys_refused():
    with pytest.raises(UserError, match="matches no Hugging Face architecture"):
        LMModelConfig(positions="rotary", norm="layernorm", mlp="gelu", bias=True)
    with pytest.raises(UserError, match="divisible"):
        LMModelConfig(d_model=30, n_heads=4)
    sections = preset_sections("tiny")
    with pytest.raises(UserError, match="unknown config key 'nope'"):
        apply_overrides(sections, {"nope": 1})
    with pytest.raises(UserError, match="derived"):
        apply_overrides(sections, {"vocab_size": 10})
    with pytest.raises(UserError, match="preset"):
        preset_sections("gpt5")
    apply_overrides(sections, {"lr": "0.01", "model.n_layers": "3"})
    assert sections["train"]["lr"] == 0.01 and sections["model"]["n_layers"] == 3
    assert set(PRESETS) >= {"tiny", "gpt2-124m", "llama-124m"}


def test_parameter_count_matches_the_module():
    for style in STYLES.values():
        cfg = LMModelConfig(vocab_size=320, n_ctx=32, n_layers=2, d_model=32, n_heads=4,
                            d_mlp=64, **style)
        assert cfg.n_params() == sum(p.numel() for p in build_model(cfg).parameters())
    gpt2 = LMModelConfig(**{**preset_sections("gpt2-124m")["model"], "vocab_size": 50304})
    assert 124e6 < gpt2.n_params() < 125e6


@pytest.mark.parametrize("schedule", ["cosine", "wsd", "constant"])
def test_schedules(schedule):
    cfg = PretrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1,
                         schedule=schedule, decay_frac=0.2)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    if schedule == "cosine":
        assert lrs[-1] == pytest.approx(0.1, abs=1e-3) and lrs[50] < lrs[20]
    elif schedule == "wsd":
        assert lrs[79] == 1.0 and lrs[-1] == pytest.approx(0.1) and lrs[90] < lrs[85]
    else:
        assert lrs[-1] == 1.0
