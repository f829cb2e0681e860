import json

import pytest
import torch

from circuits.datasets import greater_than_pairs, ioi_pairs, load_jsonl_pairs, make_pairs
from circuits.target import Target, check_fits, from_bridge, load_target
from tests.circuits.conftest import native
from workbench.errors import UserError


def _target():
    vin = {t: i for i, t in enumerate("abcdefghijk")}
    vout = {t: i for i, t in enumerate("0123456")}
    return from_bridge(native(), "n", vin, vout)


def _write(tmp_path, lines):
    p = tmp_path / "pairs.jsonl"
    p.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    return p


def test_jsonl_pairs_ok(tmp_path):
    p = _write(tmp_path, [{"clean": ["a", "b", "c"], "corrupted": ["a", "d", "c"],
                           "answer": "3", "distractor": "4"},
                          {"clean": ["a", "b"], "corrupted": ["e", "b"], "answer": "1"}])
    d = load_jsonl_pairs(p, _target())
    assert d.clean.tolist() == [[0, 1, 2], [0, 1, 0]]  # right-padded
    assert d.positions.tolist() == [2, 1] and d.answer.tolist() == [3, 1]
    assert d.distractor.tolist() == [4, -1]


@pytest.mark.parametrize("line, message", [
    ({"clean": ["a", "b"], "corrupted": ["a"], "answer": "1"}, "line 2: clean has 2 tokens"),
    ({"clean": ["a", "zz"], "corrupted": ["a", "b"], "answer": "1"}, "line 2: unknown token 'zz'"),
    ({"clean": ["a"], "corrupted": ["b"], "answer": "x"}, "line 2: unknown token 'x' in answer"),
    ({"clean": ["a"], "corrupted": ["b"]}, "line 2: missing 'answer'"),
    ("{not json", "line 2: invalid JSON"),
])
def test_jsonl_pairs_errors(tmp_path, line, message):
    good = {"clean": ["a"], "corrupted": ["b"], "answer": "1"}
    with pytest.raises(UserError, match=message):
        load_jsonl_pairs(_write(tmp_path, [good, line]), _target())


def test_unknown_task_and_model(tmp_path):
    with pytest.raises(UserError, match="unknown task 'nope'"):
        make_pairs("nope", _target())
    with pytest.raises(UserError, match="does not exist"):
        make_pairs(str(tmp_path / "missing.jsonl"), _target())
    with pytest.raises(UserError, match="unknown model 'no-such-run'"):
        from workbench.store import RunStore
        load_target("no-such-run", RunStore(tmp_path / "home"))


def test_too_large_model_is_refused(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 4096)
    monkeypatch.setattr("circuits.target.available_memory_bytes", lambda: 1000)
    with pytest.raises(UserError, match="GiB of memory is available"):
        check_fits(tmp_path)


def test_ioi_and_greater_than_on_tiny_gpt2(hf_dirs):
    from workbench.models import load_hf_bridge
    bridge = load_hf_bridge(hf_dirs["gpt2"])
    tok = bridge.tokenizer
    vocab = tok.get_vocab()
    t = Target(bridge=bridge, name="gpt2", kind="hf", input_vocab=vocab, output_vocab=vocab,
               tokenizer=tok)
    ioi = ioi_pairs(t, n=16, seed=1)
    assert len(ioi) == 16 and ioi.clean.shape == ioi.corrupted.shape
    assert (ioi.answer != ioi.distractor).all()
    text = tok.decode(ioi.clean[0].tolist())
    assert text.startswith("When") and text.split()[-1] == "to"
    # the answer (indirect object) is the first name; the distractor (subject) is repeated
    assert ioi.clean[0][1] == ioi.answer[0] and ioi.clean[0][3] == ioi.distractor[0]
    gt = greater_than_pairs(t, n=16, seed=1)
    assert len(gt) == 16
    at = gt.clean[0].tolist().index(vocab["17"]) + 1  # the year's last two digits
    yy = [int(tok.decode([int(c)])) for c in gt.clean[:, at]]
    assert [int(tok.decode([int(a)])) for a in gt.answer] == [y + 1 for y in yy]
    assert all(tok.decode([int(c)]) == "01" for c in gt.corrupted[:, at])
    # and they run through the masked forward
    from circuits.evaluate import evaluate_circuit
    from circuits.masked_forward import MaskedModel
    mm = MaskedModel(bridge)
    ev = evaluate_circuit(mm, ioi, torch.ones(mm.graph.n_edges, dtype=torch.bool))
    assert ev.kl < 1e-6 and ev.exact_match == 1.0
