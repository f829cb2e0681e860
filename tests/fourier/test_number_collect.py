"""Number-token spectra collected from real models: a Hugging Face directory and an in-house
bridge, with periodic structure planted into the number embeddings; the CLI face."""

import json
import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.number_collect import collect_number_spectra
from workbench.models import ModelConfig, build_native, load_hf_bridge, to_bridge

N = 40
NUMBERS = [str(i) for i in range(N)]


def plant_period(period, amplitude=1.0):
    """An ``edit`` for ``save_tiny_gpt2``: number rows of ``wte`` get ``cos(2 pi n / period)``
    along one direction (GPT-2 ties the unembedding to them)."""

    def edit(model, tokenizer):
        wte = model.transformer.wte.weight  # [vocab, d_model]
        g = torch.Generator().manual_seed(1)
        u = torch.randn(wte.shape[1], generator=g)
        u = u / u.norm()
        for n in range(N):
            row = tokenizer.convert_tokens_to_ids(str(n))
            wte[row] += amplitude * math.cos(2 * math.pi * n / period) * u

    return edit


@pytest.fixture
def planted_dir(tmp_path, save_tiny_gpt2):
    path = tmp_path / "gpt2-numbers"
    hf = save_tiny_gpt2(path, NUMBERS + ["plus"], n_layer=3, edit=plant_period(10))
    return path, hf


def test_planted_period_10_is_found_in_the_embeddings(planted_dir, tmp_path, save_tiny_gpt2):
    path, _ = planted_dir
    bridge = load_hf_bridge(path)
    result = collect_number_spectra(bridge, bridge.tokenizer, n_numbers=N)
    assert result.spelling == "{n}"
    assert result.embedding.top_periods(1)[0][0] == pytest.approx(10.0)
    planted_share = float(result.embedding.energy_share()[10.0])
    assert planted_share > 0.5
    # the same model without the planted rows has no such peak
    save_tiny_gpt2(tmp_path / "plain", NUMBERS + ["plus"], n_layer=3)
    plain = load_hf_bridge(tmp_path / "plain")
    base = collect_number_spectra(plain, plain.tokenizer, n_numbers=N)
    assert float(base.embedding.energy_share()[10.0]) < 0.3 < planted_share


def test_logit_lens_has_one_row_per_layer_and_ends_at_the_model_output(planted_dir):
    path, hf = planted_dir
    bridge = load_hf_bridge(path)
    result = collect_number_spectra(bridge, bridge.tokenizer, n_numbers=N)
    assert result.lens_logits.shape == (3, N, N)
    assert result.logit_lens.magnitude.shape == (3, N // 2 + 1)
    assert result.prompt_prefix == (bridge.tokenizer.bos_token_id,)
    # after the last layer, the lens is the model's own prediction at the number position
    ids = torch.tensor(result.token_ids)
    prompts = torch.stack([torch.full((N,), result.prompt_prefix[0]), ids], dim=1)  # [N, 2]
    with torch.no_grad():
        expected = hf(prompts).logits[:, -1][:, ids]  # [N, N]
    assert torch.allclose(result.lens_logits[-1], expected, atol=1e-4)
    shares = result.logit_lens.energy_share()
    assert shares[10.0].shape == (3,)
    out = result.to_json()
    assert out["n_layers"] == 3 and len(out["logit_lens"]["magnitude"]) == 3


def test_numbers_that_are_not_single_tokens_are_named(tmp_path, save_tiny_gpt2):
    # "0".."29" exist; "30".."39" do not (WordLevel maps them to <unk>)
    save_tiny_gpt2(tmp_path / "short", [str(i) for i in range(30)], n_layer=1)
    bridge = load_hf_bridge(tmp_path / "short")
    with pytest.raises(UserError, match=r"not single tokens of this model: numbers 30-39 "):
        collect_number_spectra(bridge, bridge.tokenizer, n_numbers=N)
    result = collect_number_spectra(bridge, bridge.tokenizer, n_numbers=30, prefix="7 8")
    assert len(result.prompt_prefix) == 3 and result.n_numbers == 30


def test_in_house_bridge_numbers_are_token_ids():
    cfg = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=21,
                      d_vocab_out=20, n_ctx=3)
    state = build_native(cfg).state_dict()
    x = torch.arange(20, dtype=torch.float32)
    state["tok_embed.weight"][:20, 0] += 3 * torch.cos(2 * math.pi * x / 5)
    result = collect_number_spectra(to_bridge(cfg, state), n_numbers=20)
    assert result.spelling is None and result.token_ids == tuple(range(20))
    assert result.embedding.top_periods(1)[0][0] == pytest.approx(5.0)
    assert result.lens_logits.shape == (2, 20, 20)
    with pytest.raises(UserError, match=r"not tokens of this model .*: numbers 20$"):
        collect_number_spectra(to_bridge(cfg, state), n_numbers=21)


def test_cli_json_and_one_line_errors(planted_dir, tmp_path, capsys, home):
    from workbench.cli import main

    path, _ = planted_dir
    assert main(["fourier", "numbers", "--model", str(path), "--n", str(N), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_numbers"] == N and out["n_layers"] == 3
    assert out["embedding"]["top_periods"][0][0] == pytest.approx(10.0)
    assert set(out["embedding"]["energy_share"]) == {"2.0", "2.5", "5.0", "10.0"}
    assert len(out["logit_lens"]["energy_share"]["10.0"]) == 3

    assert main(["fourier", "numbers", "--model", str(path), "--n", "41"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not single tokens of this model: numbers 40 " in err

    assert main(["fourier", "numbers", "--model", str(tmp_path / "missing-dir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing-dir" in err

    assert main(["fourier", "some-run", "--model", str(path)]) == 2
    assert "--model goes with" in capsys.readouterr().err


def test_cli_takes_an_in_house_run(store, capsys):
    from workbench.checkpoint import save_checkpoint
    from workbench.cli import main

    cfg = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=21,
                      d_vocab_out=20, n_ctx=3)
    state = build_native(cfg).state_dict()
    state["tok_embed.weight"][:20, 1] += 3 * torch.cos(2 * math.pi * torch.arange(20.0) / 2)
    run = store.create_run(kind="train", task="modular-addition", config={"model": cfg.to_dict()},
                           name="tiny")
    path = store.run_dir(run.id) / "checkpoints" / "step_00000010.safetensors"
    save_checkpoint(path, state, {"step": 10, "model": cfg.to_dict()})
    store.add_artifact(run.id, path, "checkpoint", step=10)
    assert main(["fourier", "numbers", "--model", "tiny", "--n", "20"]) == 0
    text = capsys.readouterr().out
    assert f"run {run.id}: numbers 0-19 (token id = number)" in text
    assert "embedding: top periods 2 " in text and "logit lens layer 0:" in text
