"""Collection: values equal the model's own cache, chunks + manifest, resume after a kill,
nnsight equals the bridge, spans on a tokenizer model, and bad input refused before writing."""

from __future__ import annotations

import json

import pytest
import torch

import probes.collect as collect_mod
from probes.activations import load_activations
from probes.baselines import random_model
from probes.collect import collect_activations
from probes.sources import ModelSource, config_hash, load_data, load_model
from workbench.errors import UserError
from workbench.models import ModelConfig, to_bridge


def tiny_source(seed=0, n_layers=2) -> ModelSource:
    cfg = ModelConfig(n_layers=n_layers, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=20,
                      d_vocab_out=20, n_ctx=8, init_seed=seed)
    return ModelSource(bridge=to_bridge(cfg), name=f"tiny{seed}", run_id=None, step=None,
                       config_hash=config_hash(cfg.to_dict()), model_config=cfg.to_dict())


@pytest.fixture
def token_file(tmp_path):
    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "data.jsonl"
    rows = []
    for i in range(50):
        length = 4 + i % 4  # variable lengths: right padding must not change anything
        toks = torch.randint(0, 20, (length,), generator=gen).tolist()
        rows.append({"tokens": toks, "first": str(toks[0]), "id": i})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_collected_values_equal_the_models_cache(tmp_path, token_file):
    path, rows = token_file
    model = tiny_source()
    r = collect_activations(model, load_data(model, str(path)), tmp_path / "acts",
                            layers="all", positions="0,-1", hooks="resid,attn,mlp",
                            chunk_size=16, batch_size=7)
    assert r.chunks_written == 4 and r.n_examples == 50 and r.tokens == sum(
        len(x["tokens"]) for x in rows)
    acts = load_activations(tmp_path / "acts")
    assert acts.sites == ["resid.0", "attn.1", "mlp.1", "resid.1", "attn.2", "mlp.2", "resid.2"]
    assert acts.column("id") == list(range(50))
    hooks = {s["name"]: s["hook"] for s in acts.manifest["sites"]}
    for i in (0, 13, 49):
        toks = torch.tensor([rows[i]["tokens"]])
        _, cache = model.bridge.run_with_cache(toks)
        for site, hook in hooks.items():
            want = cache[hook][0, [0, len(rows[i]["tokens"]) - 1]]
            assert torch.allclose(acts.acts[site][i], want, atol=1e-5), (site, i)
        assert acts.tokens[i].tolist() == [rows[i]["tokens"][0], rows[i]["tokens"][-1]]


def test_nnsight_backend_equals_the_bridge(tmp_path, token_file):
    path, _ = token_file
    model = tiny_source()
    for backend in ("bridge", "nnsight"):
        collect_activations(model, load_data(model, str(path)), tmp_path / backend,
                            positions="1,-1", hooks="resid,mlp", backend=backend)
    a, b = load_activations(tmp_path / "bridge"), load_activations(tmp_path / "nnsight")
    for site in a.sites:
        assert torch.allclose(a.acts[site], b.acts[site], atol=1e-5)


def test_resume_after_a_kill_skips_finished_chunks(tmp_path, token_file, monkeypatch):
    path, _ = token_file
    model = tiny_source()
    out = tmp_path / "acts"
    real_save, calls = collect_mod.save_checkpoint, []

    def dying_save(p, tensors, meta):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while writing the third chunk
        calls.append(p)
        real_save(p, tensors, meta)
    monkeypatch.setattr(collect_mod, "save_checkpoint", dying_save)
    with pytest.raises(KeyboardInterrupt):
        collect_activations(model, load_data(model, str(path)), out, chunk_size=10)
    assert sorted(p.name for p in out.glob("chunk_*")) == ["chunk_00000.safetensors",
                                                           "chunk_00001.safetensors"]
    assert not list(out.glob("*.tmp")) and not json.loads((out / "manifest.json").read_text()
                                                          )["complete"]
    with pytest.raises(UserError, match="incomplete"):
        load_activations(out)
    monkeypatch.setattr(collect_mod, "save_checkpoint", real_save)
    r = collect_activations(model, load_data(model, str(path)), out, chunk_size=10)
    assert (r.chunks_skipped, r.chunks_written) == (2, 3)
    whole = collect_activations(model, load_data(model, str(path)), tmp_path / "whole",
                                chunk_size=10)
    assert whole.chunks_written == 5
    a, b = load_activations(out), load_activations(tmp_path / "whole")
    assert all(torch.equal(a.acts[s], b.acts[s]) for s in a.sites)


def test_bad_input_is_refused_before_anything_is_written(tmp_path, token_file):
    path, _ = token_file
    model = tiny_source()
    out = tmp_path / "acts"
    data = load_data(model, str(path))
    cases = [(dict(layers="5"), "layer 5 does not exist"),
             (dict(hooks="blocks.7.hook_resid_post"), "no hook 'blocks.7.hook_resid_post'"),
             (dict(hooks="weights"), "unknown hook"),
             (dict(positions="6"), "outside the sequence of example 0"),
             (dict(positions="before:name"), "spans"),
             (dict(positions="all"), "one length")]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message):
            collect_activations(model, data, out, **kwargs)
        assert not out.exists()
    collect_activations(model, data, out)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    with pytest.raises(UserError, match="another model"):
        collect_activations(tiny_source(seed=1), load_data(tiny_source(seed=1), str(path)), out)
    with pytest.raises(UserError, match="other positions"):
        collect_activations(model, data, out, positions="0")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"tokens": list(range(9))}) + "\n")
    with pytest.raises(UserError, match="more than the model's context of 8"):
        collect_activations(model, load_data(model, str(long)), tmp_path / "x")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tokens": [1, 99]}) + "\n")
    with pytest.raises(UserError, match="not an id below d_vocab"):
        collect_activations(model, load_data(model, str(bad)), tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_span_positions_on_a_tokenizer_model(tmp_path, save_tiny_gpt2):
    words = ["Ada", "Lin", "was", "born", "in", "Rome", "Oslo", "Paris", "."]
    save_tiny_gpt2(tmp_path / "hf", words)
    model = load_model(str(tmp_path / "hf"))
    lines = []
    for i, city in enumerate(["Rome", "Oslo", "Paris"] * 4):
        text = f"Ada Lin was born in {city} ."
        start = text.index(city)
        lines.append({"text": text, "person_id": i, "birth_city": city,
                      "value_spans": {"birth_city": [start, start + len(city)]},
                      "name_spans": [[0, 7]]})
    path = tmp_path / "bios.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    collect_activations(model, load_data(model, str(path)), tmp_path / "acts",
                        positions="end:name,before:birth_city,start:birth_city")
    acts = load_activations(tmp_path / "acts")
    vocab = model.tokenizer.get_vocab()
    assert acts.tokens[:, 0].eq(vocab["Lin"]).all() and acts.tokens[:, 1].eq(vocab["in"]).all()
    assert acts.tokens[:, 2].tolist() == [vocab[x["birth_city"]] for x in lines]
    assert acts.model["config_hash"] == model.config_hash and acts.model["run_id"] is None
    rand = random_model(model, seed=3)  # the HF path of the random-init baseline
    w, w_rand = (m.bridge.original_model.transformer.h[0].mlp.c_fc.weight for m in (model, rand))
    assert w.shape == w_rand.shape and not torch.equal(w, w_rand)
    assert rand.config_hash != model.config_hash
