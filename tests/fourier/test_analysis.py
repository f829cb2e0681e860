import json

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.analysis import analyze_modular_model, analyze_series
from workbench.fourier.collect import collect_modular

REQUIRED = {"key_frequencies", "embedding_fourier_norms", "embedding_key_fraction",
            "neuron_frequencies", "neurons_explained_fraction", "logit_fit_r2", "full_loss",
            "restricted_loss", "excluded_loss", "gini_embedding", "gini_unembedding",
            "sum_squared_weights"}


def naive_forward(state, tokens, n_heads):
    """Full three-position forward written out directly (causal attention, no LayerNorm)."""
    f = torch.nn.functional
    x = state["tok_embed.weight"][tokens] + state["pos.weight"][:3]  # [batch, 3, d_model]
    lin = {n: (state[f"layers.0.attn.{n}.weight"], state[f"layers.0.attn.{n}.bias"]) for n in "qkvo"}
    batch, seq, _ = x.shape
    q, k, v = (f.linear(x, *lin[n]).view(batch, seq, n_heads, -1).transpose(1, 2) for n in "qkv")
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(torch.triu(torch.ones(3, 3, dtype=torch.bool), 1), float("-inf"))
    z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, seq, -1)
    x = x + f.linear(z, *lin["o"])
    hidden = torch.relu(f.linear(x, state["layers.0.mlp.fc_in.weight"], state["layers.0.mlp.fc_in.bias"]))
    x = x + f.linear(hidden, state["layers.0.mlp.fc_out.weight"], state["layers.0.mlp.fc_out.bias"])
    return hidden[:, -1], x[:, -1] @ state["head.weight"].T


def grid_tokens(p):
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    return torch.stack([a.flatten(), b.flatten(), torch.full((p * p,), p)], dim=1)


def test_collector_matches_a_direct_full_forward():
    p, d, n_heads = 7, 12, 3
    g = torch.Generator().manual_seed(0)
    shapes = {"tok_embed.weight": (p + 1, d), "pos.weight": (3, d), "head.weight": (p, d),
              "layers.0.mlp.fc_in.weight": (20, d), "layers.0.mlp.fc_in.bias": (20,),
              "layers.0.mlp.fc_out.weight": (d, 20), "layers.0.mlp.fc_out.bias": (d,)}
    for n in "qkvo":
        shapes[f"layers.0.attn.{n}.weight"], shapes[f"layers.0.attn.{n}.bias"] = (d, d), (d,)
    state = {k: torch.randn(s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    hidden, logits = naive_forward(state, grid_tokens(p), n_heads)
    acts = collect_modular(state, p, n_heads=n_heads, dtype=torch.float64)
    assert torch.allclose(acts.neurons.reshape(p * p, -1), hidden, atol=1e-10)
    assert torch.allclose(acts.logits.reshape(p * p, -1), logits, atol=1e-10)


@pytest.mark.integration  # imports TransformerLens (~10 s); the direct forward above is the fast check
def test_collector_matches_the_native_transformer_forward():
    from workbench.models import ModelConfig, build_native

    p = 11
    cfg = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=24, d_vocab=p + 1, d_vocab_out=p,
                      init_seed=3)
    model = build_native(cfg)
    with torch.no_grad():  # make every parameter matter, biases included
        for t in model.parameters():
            t.normal_(0, 0.5)
    tokens = grid_tokens(p)
    with torch.no_grad():
        expected = model(tokens)[:, -1].reshape(p, p, p)
    acts = collect_modular(model.state_dict(), p, n_heads=2)
    assert torch.allclose(acts.logits, expected, atol=1e-4)
    assert acts.neurons.shape == (p, p, 24) and bool((acts.neurons >= 0).all())


def test_training_free_fourier_model_scores_like_a_grokked_one(constructed_model):
    p, keys = 31, [3, 7, 11]
    state = constructed_model(p, keys)
    mask = torch.rand(p, p, generator=torch.Generator().manual_seed(0)) < 0.3
    report = analyze_modular_model(state, p, mask, n_heads=2)
    out = report.to_json()
    assert REQUIRED <= set(out)
    json.dumps(out)
    assert out["key_frequencies"] == keys
    assert out["embedding_key_fraction"] == pytest.approx(1.0, abs=1e-6)
    assert out["neurons_explained_fraction"] == 1.0
    assert {n["frequency"] for n in out["neuron_frequencies"]} == set(keys)
    # |cos(w(a-b)/2)| modulates each term: r^2 = (2/pi)^2 / (1/2) = 0.81
    assert out["logit_fit_r2"] == pytest.approx(8 / torch.pi ** 2, abs=0.01)
    assert out["train_accuracy"] == 1.0 and out["test_accuracy"] == 1.0
    assert out["restricted_loss"] <= out["full_loss"]
    assert out["excluded_loss"] > 10 * out["excluded_baseline_loss"]
    assert out["gini_embedding"] == pytest.approx(1 - 3 / 15, abs=1e-6)


def test_multiplication_model_is_analysed_over_the_discrete_log(constructed_model):
    p, keys = 23, [2, 5]
    state = constructed_model(p, keys, operation="mul", d_mlp=64)
    mask = torch.ones(p, p, dtype=torch.bool)
    mask[::2] = False
    out = analyze_modular_model(state, p, mask, "mul", n_heads=2).to_json()
    assert out["n"] == p - 1
    assert out["key_frequencies"] == keys
    assert out["embedding_key_fraction"] == pytest.approx(1.0, abs=1e-6)
    assert out["neurons_explained_fraction"] == 1.0
    assert out["logit_fit_r2"] > 0.75
    assert out["restricted_loss"] <= out["full_loss"]
    # the same model read as addition finds nothing
    add = analyze_modular_model(state, p, mask, "add", n_heads=2)
    assert add.embedding_key_fraction < 0.5


def test_series_uses_final_keys_and_detects_phases(constructed_model):
    p = 17
    final = constructed_model(p, [2, 5], d_mlp=32)
    g = torch.Generator().manual_seed(0)
    noise = {k: torch.randn(v.shape, generator=g) * 0.3 for k, v in final.items()}
    checkpoints = []
    for i, t in enumerate(torch.linspace(0, 1, 8).tolist()):
        state = {k: t * v + (1 - t) * noise[k] for k, v in final.items()}
        metrics = {"train_acc": 1.0 if i >= 1 else 0.2, "test_loss": [5, 5, 5, 5, 1e-1, 1e-3, 1e-5, 1e-6][i]}
        checkpoints.append(((i + 1) * 100, state, metrics))
    mask = torch.rand(p, p, generator=g) < 0.5
    series = analyze_series(checkpoints[::-1], p, mask, n_heads=2)
    assert [r.step for r in series.reports] == [100 * (i + 1) for i in range(8)]
    assert all(r.key_frequencies == [2, 5] for r in series.reports)
    assert series.phases.memorisation_end == 200
    assert series.phases.grokked
    assert series.reports[-1].embedding_key_fraction > series.reports[0].embedding_key_fraction
    doc = series.to_json()
    assert doc["phases"]["memorisation_end"] == 200 and len(doc["checkpoints"]) == 8
    # a finer metric history decides the boundaries
    steps = list(range(10, 801, 10))
    history = {"train_acc": [(s, 1.0 if s >= 150 else 0.5) for s in steps],
               "test_loss": [(s, 5.0 if s < 400 else 10.0 ** (0.7 - (s - 400) / 50)) for s in steps]}
    fine = analyze_series(checkpoints, p, mask, n_heads=2, history=history)
    assert fine.phases.memorisation_end == 150
    assert fine.phases.circuit_formation_end == pytest.approx(400, abs=10)
    assert fine.phases.cleanup_end is None  # still falling at the last step
    assert fine.phases.excluded_loss_peak == series.phases.excluded_loss_peak
    serial = analyze_series(checkpoints, p, mask, n_heads=2, workers=1, threads=None)
    assert serial.to_json() == analyze_series(checkpoints, p, mask, n_heads=2).to_json()


def test_bad_inputs(constructed_model):
    state = constructed_model(7, [1], d_mlp=8)
    with pytest.raises(UserError):
        analyze_modular_model(state, 7, torch.ones(6, 6, dtype=torch.bool), n_heads=2)
    with pytest.raises(UserError):
        analyze_modular_model(state, 7, torch.ones(7, 7, dtype=torch.bool), n_heads=3)
    bad = dict(state, **{"layers.0.ln1.w": torch.ones(32)})
    with pytest.raises(UserError):
        analyze_modular_model(bad, 7, torch.ones(7, 7, dtype=torch.bool), n_heads=2)
    with pytest.raises(UserError):
        analyze_series([], 7, torch.ones(7, 7, dtype=torch.bool))
