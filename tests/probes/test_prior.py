"""Prior localisation, unit level: task generators, the error-prior statistics, probes on
constructed activations (a planted prior direction is found at its layer; a shuffled prior gives
R² ~ 0), the layer rule, and the checks that refuse bad input."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from probes.activations import Activations
from probes.prior import choose_layers, fit_prior_probes, shuffled_prior
from probes.prior_finetune import check_layers, parse_layers, split_values
from probes.prior_scoring import Encoder, check_bins, error_prior_correlation, spearman
from training.corpora.prior_tasks import prior_task, restrict
from workbench.errors import UserError


def test_inhouse_corpus_follows_the_prior_and_prompts_are_uniform():
    task = prior_task("count")
    docs = list(task.corpus(6000, seed=1))
    answers = Counter(d.rsplit(" ", 1)[1] for d in docs if not d.startswith("exact:"))
    # common values are written 12x as often as rare ones, medium 3x
    assert answers["10"] / answers["7"] == pytest.approx(12, rel=0.25)
    assert answers["4"] / answers["7"] == pytest.approx(3, rel=0.25)
    stim = task.stimuli(200, seed=0)
    assert set(Counter(s.value for s in stim).values()) == {10}
    for s in stim:  # the answer is the count of the listed words
        assert len(s.prompt.split(":")[1].split()) - 1 == int(s.value)
    # filler words before "count:" vary, so the count is not a function of the prompt length
    lengths = {}
    for s in stim:
        lengths.setdefault(len(s.prompt.split()), set()).add(s.value)
    assert max(len(v) for v in lengths.values()) >= 5
    assert len({len(s.prompt.split()) for s in stim if s.value == "7"}) >= 5
    acr = prior_task("acronym").prompt("CAT", random.Random(0))
    assert acr.prompt == "acronym: cold apple tall =" and acr.condition == "common"
    hf = prior_task("count-words")
    assert {hf.condition(v) for v in ("30", "45", "47")} == {"common", "medium", "rare"}


def test_spearman_and_bootstrap_interval():
    rng = np.random.default_rng(0)
    values = [str(v) for v in range(20) for _ in range(20)]
    lp = np.array([-float(v) for v in range(20) for _ in range(20)])
    errors = rng.random(400) < np.linspace(0.05, 0.95, 20).repeat(20)  # rarer -> more errors
    c = error_prior_correlation(errors, lp, values, n_boot=300)
    assert c.rho < -0.5 and c.significant and c.ci_high < 0
    noise = np.tile([True, False], 200)  # every value wrong half the time
    c = error_prior_correlation(noise, lp, values, n_boot=300)
    assert not c.significant and c.rho == pytest.approx(0) and c.ci_low <= 0 <= c.ci_high
    assert spearman(np.ones(5), np.arange(5.0)) is None
    assert error_prior_correlation(np.zeros(400, bool), lp, values).rho is None


def _planted(layer: int, *, n_values=30, per_value=20, d=24, n_sites=4, seed=0):
    """Residual streams of ``n_sites`` layers x 3 positions; the log prior of each example's
    answer is planted along one direction at ``resid.layer``, last position only."""
    gen = torch.Generator().manual_seed(seed)
    prior = {str(v): float(-torch.rand(1, generator=gen) * 6) for v in range(n_values)}
    values = [str(v) for v in range(n_values) for _ in range(per_value)]
    n = len(values)
    y = torch.tensor([prior[v] for v in values])
    acts = {f"resid.{i}": torch.randn(n, 3, d, generator=gen) for i in range(n_sites)}
    direction = torch.randn(d, generator=gen)
    acts[f"resid.{layer}"][:, 2] += (y - y.mean())[:, None] * direction / direction.norm() * 3
    shuffled = shuffled_prior(prior, 0)
    per_prompt = [prior[v] for v in values]
    random.Random(1).shuffle(per_prompt)
    columns = [{"value": v, "log_prior": prior[v], "shuffled_log_prior": p,
                "value_shuffled_log_prior": shuffled[v]} for v, p in zip(values, per_prompt)]
    manifest = {"positions": ["-3", "-2", "-1"], "model": {"name": "m", "run_id": None,
                                                           "step": None, "config_hash": "x"},
                "sites": [{"name": s, "hook": s} for s in acts]}
    return Activations(directory=Path("memory"), manifest=manifest, acts=acts,
                       tokens=torch.arange(3 * n).reshape(n, 3), columns=columns)


@pytest.mark.parametrize("layer", [1, 3])
def test_planted_prior_direction_is_found_at_its_layer(layer):
    acts = _planted(layer)
    real, control, real_v, control_v = fit_prior_probes(acts, seed=0, l2=0.01)
    r2 = dict(zip(real.sites, (row[-1] for row in real.test_score)))
    assert r2[f"resid.{layer}"] > 0.9
    assert all(v < 0.2 for s, v in r2.items() if s != f"resid.{layer}")
    # held-out answer values: the direction generalises to answers the probe never saw
    assert dict(zip(real_v.sites, real_v.test_score))[f"resid.{layer}"][-1] > 0.8
    # the shuffled prior is not decodable anywhere
    for grid in (control.test_score, control_v.test_score):
        assert max(abs(v) for row in grid for v in row) < 0.3
    assert abs(dict(zip(control.sites, control.test_score))[f"resid.{layer}"][-1]) < 0.2
    margin = {s: real.test_score[i][-1] - control.test_score[i][-1]
              for i, s in enumerate(real.sites)}
    assert choose_layers(margin, n_layers=3) == [layer - 1]  # block layer-1 writes resid.layer


def test_layer_rule_takes_a_quarter_of_the_blocks_and_never_the_embeddings():
    margin = {"resid.0": 5.0, "resid.1": 0.1, "resid.2": 0.9, "resid.3": 0.3, "resid.4": 0.8,
              "resid.5": 0.2, "resid.6": 0.0, "resid.7": 0.4, "resid.8": 0.5}
    assert choose_layers(margin, n_layers=8) == [1, 3]


def test_bad_inputs_are_refused():
    task = prior_task("count")
    with pytest.raises(UserError, match="at least two"):
        check_bins(restrict(task, ["5", "10"]))
    with pytest.raises(UserError, match="not an answer"):
        restrict(task, ["99"])
    with pytest.raises(UserError, match="also appear in training: 3"):
        split_values(task, ["3", "4"], ["1", "2", "3"])
    train, held = split_values(task, seed=0)
    assert not set(train) & set(held)
    assert {task.condition(v) for v in held} == {"common", "medium", "rare"}
    with pytest.raises(UserError, match="layer 4 is out of range"):
        check_layers([1, 4], 4)
    assert parse_layers("auto") is None and parse_layers("2, 0,2") == [0, 2]
    with pytest.raises(UserError, match="block indices like 0,2, got '0,x'"):
        parse_layers("0,x")
    with pytest.raises(UserError, match="no tokenizer"):
        Encoder(None, task)


def test_an_answer_the_tokenizer_cannot_encode(tmp_path, save_tiny_gpt2):
    from transformers import AutoTokenizer
    save_tiny_gpt2(tmp_path, ["count", ":", "=", "cat"])  # no digits in the vocabulary
    with pytest.raises(UserError, match="cannot encode the answer '1'"):
        Encoder(AutoTokenizer.from_pretrained(str(tmp_path)), prior_task("count"))


def test_kept_distribution_kl_ignores_only_the_correct_answer():
    from probes.prior_train import kept_distribution_kl
    gen = torch.Generator().manual_seed(0)
    original = torch.randn(2, 4, 10, generator=gen)
    targets = torch.full((2, 4), -100)
    targets[:, 2] = torch.tensor([3, 7])  # answer positions
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1, 3] = False
    assert kept_distribution_kl(original.clone(), original, targets, valid) == pytest.approx(0)
    # raising the correct answer's logit changes nothing the KL looks at
    tuned = original.clone()
    tuned[0, 2, 3] += 5.0
    tuned[1, 2, 7] -= 5.0
    assert kept_distribution_kl(tuned, original, targets, valid) == pytest.approx(0, abs=1e-6)
    # raising a wrong answer there is penalised, and so is any change at other positions
    for r, t, v in ((0, 2, 4), (0, 1, 3)):
        tuned = original.clone()
        tuned[r, t, v] += 3.0
        assert kept_distribution_kl(tuned, original, targets, valid) > 0.01
    tuned = original.clone()
    tuned[1, 3] += torch.randn(10, generator=gen)  # a padding position: ignored
    assert kept_distribution_kl(tuned, original, targets, valid) == pytest.approx(0, abs=1e-6)


def test_finetune_config_refuses_bad_values_and_validation_is_disjoint():
    from dataclasses import replace

    from probes.prior_train import FinetuneConfig, validation_values
    task = prior_task("count")
    train, held = split_values(task, seed=0)
    fit, val = validation_values(task, train, 0.25, seed=0)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert {task.condition(v) for v in val} == {"common", "medium", "rare"}
    assert validation_values(task, train, 0.0) == (train, ())
    cfg = FinetuneConfig(task="count", layers=(1,), held_out=held, train_values=fit,
                         val_values=val)
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg
    for field, bad, message in (("lr", 0.0, "lr must be positive, got 0.0"),
                                ("steps", 0, "steps must be positive, got 0"),
                                ("kl_weight", -1.0, "kl_weight must be 0 or more, got -1.0"),
                                ("patience", -2, "patience must be 0 or more, got -2"),
                                ("val_values", (held[0],), "also appear in val_values")):
        with pytest.raises(UserError, match=message):
            replace(cfg, **{field: bad})
    with pytest.raises(UserError, match=r"in \[0, 1\), got 1.5"):
        validation_values(task, train, 1.5)


def test_lowrank_finetune_changes_only_the_output_projections_of_the_chosen_block(
        tmp_path, save_tiny_gpt2):
    from dataclasses import replace

    import transformers
    from torch.nn.utils import parametrize

    from probes.prior_train import FinetuneConfig, finetune_blocks
    from training.corpora.prior_tasks import _FILLER, _WORDS
    task = restrict(prior_task("count"), ["1", "2", "3", "5", "6", "10"])
    words = [str(k) for k in range(1, 21)] + ["count", ":", "="] + list(_WORDS + _FILLER)
    save_tiny_gpt2(tmp_path, words)
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=3, n_head=4,
        bos_token_id=1, eos_token_id=1)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = FinetuneConfig(task="count", layers=(1,), held_out=("6",),
                         train_values=("1", "2", "3", "5", "10"), steps=4, batch_size=4,
                         lr=1e-2, trainable="lowrank", rank=2)
    tuned, info = finetune_blocks(model, task, Encoder(tok, task), [1], cfg)
    after = tuned.state_dict()
    assert set(after) == set(before) and info["steps_run"] == 4
    assert not any(parametrize.is_parametrized(m) for m in tuned.modules())  # merged
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"transformer.h.1.attn.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"}
    for k in changed:  # a rank-2 update
        assert torch.linalg.matrix_rank(after[k] - before[k]).item() <= 2
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # a copy
    with pytest.raises(UserError, match="rank must be positive, got 0"):
        replace(cfg, rank=0)
    with pytest.raises(UserError, match="trainable must be one of all, biases, lowrank"):
        replace(cfg, trainable="some")
