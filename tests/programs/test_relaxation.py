"""The relaxed model's options act as documented (the discrete model is unaffected by them)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import programs.model as model_module
from programs.config import ProgramConfig
from programs.model import ProgramModel
from programs_helpers import SHAPE


def _soft(logits, tau, hard):  # the relaxation without Gumbel noise: a deterministic check
    return torch.softmax(logits / tau, -1)


@pytest.mark.parametrize("relative, expected", [(False, 1.5), (True, 3.0)])
def test_relative_count_predicate_counts_each_preferred_match_fully(monkeypatch, relative,
                                                                    expected):
    """One counting head whose predicate row is split evenly between "a" and "b": on
    ``BOS a a b`` it counts 0.5 per match, or 1 per match with ``relative_count_predicate``."""
    monkeypatch.setattr(model_module, "_gumbel", _soft)
    cfg = ProgramConfig(n_layers=1, n_cat_heads=0, n_num_heads=1, n_cat_mlps=0, n_num_mlps=0,
                        relative_count_predicate=relative)
    model = ProgramModel(cfg, SHAPE)
    vocab = SHAPE.input_vocab
    a, b = vocab.index("a"), vocab.index("b")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.layers[0].head_read[:, 0] = 1000.0  # query and key read tokens
        model.layers[0].predicate[0] = -1000.0
        model.layers[0].predicate[0][:, [a, b]] = 0.0  # every query: "a" or "b", evenly
        model.unembed_num[1, 0] = 1.0  # logit 0 = the count
    x = torch.tensor([[vocab.index("BOS"), a, a, b, vocab.index("PAD")]])
    logits = model(x, tau=1.0)
    assert torch.allclose(logits[0, :, 0], torch.full((5,), expected))


def _noiseless(logits, tau, dim):  # the Gumbel-softmax without its noise
    return torch.softmax(logits / tau, dim)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("relaxation", ["scaled", "gumbel_log"])
def test_cold_attention_relaxation_converges_to_the_hard_rule(monkeypatch, relaxation, causal):
    """Without noise and at a tiny temperature, the relaxed model predicts what the discrete
    model does (closest match, self last, BOS when nothing matches) under either relaxation."""
    monkeypatch.setattr(model_module, "_gumbel_softmax", _noiseless)
    from programs.discrete import run_discrete
    from programs_helpers import random_inputs, random_model

    base = random_model(3, layers=3, num_heads=2, num_mlps=2, causal=causal)
    cfg = dataclasses.replace(base.cfg, attention_relaxation=relaxation)
    model = ProgramModel(cfg, SHAPE)
    model.load_state_dict(base.state_dict())
    x = random_inputs(4)
    with torch.no_grad():
        relaxed = model(x, tau=1e-4).argmax(-1)
    assert torch.equal(relaxed, run_discrete(model.discretize(), x).predictions)
