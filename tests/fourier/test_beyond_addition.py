"""``workbench fourier RUN --json`` beyond addition, end to end on tiny runs trained here:
subtraction and multiplication (discrete-log reindexing), sparse parity (Walsh spectra, parity
set from the weights, hidden progress) and group composition (irrep shares, character fit);
plus known-answer checks of the new wiring on constructed inputs.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from workbench.store import RunStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    from training.api import train

    torch.set_num_threads(1)
    store = RunStore(tmp_path_factory.mktemp("beyond") / "home")
    results = {
        "sub": train("modular-subtraction", preset="tiny", store=store, name="sub"),
        "mul": train("modular-multiplication", preset="tiny", store=store, name="mul"),
        "parity": train("sparse-parity", preset="tiny", store=store, name="parity",
                        overrides={"steps": 200, "checkpoint_every": 25}),
        "group": train("group-composition", preset="tiny", store=store, name="group"),
    }
    return store, results


def cli(store, monkeypatch, capsys, *argv) -> dict:
    from workbench.fourier.cli import register

    monkeypatch.setenv("WORKBENCH_HOME", str(store.home))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fourier", *argv, "--json"])
    assert args.handler(args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name,n_of_p", [("sub", lambda p: p), ("mul", lambda p: p - 1)])
def test_subtraction_and_multiplication(tiny_runs, monkeypatch, capsys, name, n_of_p):
    store, results = tiny_runs
    out = cli(store, monkeypatch, capsys, name)
    p = out["p"]
    assert out["operation"] == name and out["n"] == n_of_p(p) and out["task"].endswith(
        {"sub": "subtraction", "mul": "multiplication"}[name])
    assert len(out["embedding_fourier_norms"]) == out["n"] // 2 + 1
    assert len(out["neuron_frequencies"]) == 64  # d_mlp of the tiny preset
    assert 0.0 <= out["embedding_key_fraction"] <= 1.0 + 1e-9
    # the analysis rebuilt the task's split and forward pass: it agrees with the trainer
    res = results[name]
    assert out["train_accuracy"] == pytest.approx(res.train_acc, abs=1e-6)
    assert out["test_accuracy"] == pytest.approx(res.test_acc, abs=1e-6)
    assert out["train_loss"] == pytest.approx(res.train_loss, rel=1e-3, abs=1e-6)
    series = cli(store, monkeypatch, capsys, name, "--checkpoint", "all")
    assert [c["step"] for c in series["checkpoints"]] == [50, 100, 150]
    assert store.get_result(out["run"], "fourier", "progress")["done"] == 3


def test_sparse_parity_run(tiny_runs, monkeypatch, capsys):
    from workbench.fourier.parity_analysis import effective_input_weights
    from workbench.fourier.walsh import hidden_progress
    from workbench.models import ModelConfig, build_native

    store, results = tiny_runs
    series = cli(store, monkeypatch, capsys, "parity", "--checkpoint", "all")
    reports = series["checkpoints"]
    assert [r["step"] for r in reports] == list(range(25, 201, 25))
    final = reports[-1]
    n = final["n"]
    assert final["exact"] and len(final["coordinate_scores"]) == n
    assert len(final["neuron_parity_share"]) == 128
    run = store.get_run("parity")
    # hidden progress before training: an untrained model spreads its weight over all bits
    cfg = ModelConfig.from_dict(run.config["model"])
    w0 = effective_input_weights(build_native(cfg).state_dict(), n, n_heads=cfg.n_heads,
                                 normalization=cfg.normalization_type)
    start = hidden_progress(w0, final["true_support"])
    assert start < 0.75
    if results["parity"].test_acc >= 0.99:  # it learned: the weights alone name the set
        assert final["support_recovered"] and final["detection_margin"] > 1.5
        assert series["detected_support"] == series["true_support"]
        assert final["hidden_progress"] > max(start, 0.8)
        assert final["output_spectrum"]["top"][0]["set"] == final["true_support"]
        assert final["output_parity_share"] > 0.5 and final["neurons_on_parity_set"] > 0.5
        weight_share = final["weight_parity_share"]
        assert len(weight_share) == 128 and sum(weight_share) / len(weight_share) > 0.5
    assert series["hidden_progress"][-1] == [200, final["hidden_progress"]]
    one = cli(store, monkeypatch, capsys, "parity", "--checkpoint", "100")
    assert one["step"] == 100 and store.get_result(run.id, "fourier", "step=100") == one


def test_group_composition_run(tiny_runs, monkeypatch, capsys):
    store, results = tiny_runs
    out = cli(store, monkeypatch, capsys, "group")
    assert out["group"] == "S3" and out["order"] == 6
    names = [i["name"] for i in out["embedding_irreps"]["irreps"]]
    assert names == ["trivial", "standard", "sign"]
    for field in ("embedding_irreps", "unembedding_irreps", "w_l_irreps", "logit_irreps"):
        assert sum(i["share"] for i in out[field]["irreps"]) == pytest.approx(1.0)
    assert out["train_accuracy"] == pytest.approx(results["group"].train_acc, abs=1e-6)
    assert out["test_accuracy"] == pytest.approx(results["group"].test_acc, abs=1e-6)
    assert 0.0 <= out["character_fit_r2_all"] <= 1.0 + 1e-9
    series = cli(store, monkeypatch, capsys, "group", "--checkpoint", "all")
    assert len(series["checkpoints"]) == 3 and "key_irreps" in series


def test_character_fit_known_answer():
    from workbench.fourier.group_analysis import character_fit, character_regressors
    from workbench.fourier.group_irreps import symmetric_group

    elements = symmetric_group(4)
    reg = character_regressors(elements, 4)  # [5 irreps, 24, 24, 24]
    names = ["trivial", "standard", "2d", "standard_sign", "sign"]
    logits = 2.0 * reg[names.index("standard")] - 0.5 * reg[names.index("sign")] + 7.0
    fit = character_fit(logits, elements, 4, irreps=["standard"])
    assert fit.alphas["standard"] == pytest.approx(2.0) and fit.alphas["sign"] == pytest.approx(
        -0.5)
    assert sum(fit.r2_by_irrep.values()) == pytest.approx(1.0)
    assert fit.r2 == pytest.approx(fit.r2_by_irrep["standard"]) and 0.9 < fit.r2 < 1.0


def test_group_embedding_in_one_irrep_is_key():
    from workbench.fourier.group_analysis import analyze_group_model
    from workbench.fourier.group_irreps import symmetric_group
    from workbench.permutations import sign

    elements = symmetric_group(4)
    size, d = len(elements), 8
    signs = torch.tensor([float(sign(g)) for g in elements])
    w_e = torch.zeros(size + 1, d)
    w_e[:size, 0] = signs  # the embedding varies only through the sign representation
    w_e[:size, 1] = 0.5 * signs
    state = {"tok_embed.weight": w_e, "pos.weight": torch.zeros(3, d),
             "head.weight": torch.randn(size, d, generator=torch.Generator().manual_seed(0))}
    for name in "qkvo":
        state[f"layers.0.attn.{name}.weight"] = torch.zeros(d, d)
    state["layers.0.mlp.fc_in.weight"] = torch.eye(d)
    state["layers.0.mlp.fc_out.weight"] = torch.eye(d)
    tokens = ["".join(map(str, g)) for g in elements]
    report = analyze_group_model(state, tokens, n_heads=1)
    assert report.key_irreps == ["sign"] and report.embedding_key_share == pytest.approx(1.0)


def test_effective_weights_known_answer():
    """Attention that looks only at the support positions: the weights alone name the set."""
    from workbench.fourier.parity_analysis import effective_input_weights
    from workbench.fourier.walsh import detect_parity_set, hidden_progress

    n, d, support = 6, 4, (1, 4)
    e = torch.zeros(3, d)
    e[1, 0] = 1.0  # bit "1" writes e_0; "0" and "=" write nothing
    pos = torch.zeros(n + 1, d)
    pos[list(support), 1] = 1.0  # support positions carry e_1, which the keys read
    state = {"tok_embed.weight": e, "pos.weight": pos,
             "layers.0.attn.q.weight": torch.zeros(d, d),
             "layers.0.attn.q.bias": 8.0 * torch.eye(d)[1],  # the fixed query looks for e_1
             "layers.0.attn.k.weight": torch.eye(d),
             "layers.0.attn.v.weight": torch.diag(torch.tensor([1.0, 0, 0, 0])),  # values: e_0
             "layers.0.attn.o.weight": torch.eye(d),
             "layers.0.mlp.fc_in.weight": torch.randn(16, d,
                                                      generator=torch.Generator().manual_seed(0))}
    w = effective_input_weights(state, n, n_heads=1)
    assert w.shape == (16, n)
    found = detect_parity_set(w, 2)
    assert found.support == support and found.margin > 10
    assert hidden_progress(w, support) > 0.99


def test_parity_sampled_spectrum_for_many_bits():
    from workbench.fourier.parity_analysis import analyze_parity_model
    from workbench.models import ModelConfig, build_native

    n = 18  # above the exact-table limit: sampled up to degree k
    cfg = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=3,
                      d_vocab_out=2, n_ctx=n + 1, normalization_type="LN")
    model = build_native(cfg).eval()
    report = analyze_parity_model(model, model.state_dict(), n=n, k=2, support=(3, 9),
                                  n_heads=2, normalization="LN")
    assert not report.exact and len(report.coordinate_scores) == n
    assert all(len(t["set"]) <= 2 for t in report.output_spectrum["top"])
    assert len(report.neuron_parity_share) == 32 and 0.0 <= report.hidden_progress <= 1.0
