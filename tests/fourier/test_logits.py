import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.logits import (cross_entropy, excluded_logits, logit_fit,
                                      logit_fourier_norm_map, progress_losses,
                                      restricted_logits)


def cos_logits(p, alphas):
    a = torch.arange(p, dtype=torch.float64)
    t = a[:, None, None] + a[None, :, None] - a[None, None, :]  # a + b - c
    return sum(al * torch.cos(2 * math.pi * k * t / p) for k, al in alphas.items())


def test_logits_built_from_key_cosines_have_r2_one_and_the_right_alphas():
    p = 17
    logits = cos_logits(p, {2: 3.0, 5: 1.5}) + 7.0  # a constant offset is ignored by softmax
    fit = logit_fit(logits, [2, 5])
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    assert fit.alphas == pytest.approx({2: 3.0, 5: 1.5})
    assert logit_fit(logits, [2]).r2 == pytest.approx(9 / (9 + 1.5 ** 2))
    assert logit_fit(torch.randn(p, p, p, dtype=torch.float64), [2, 5]).r2 < 0.05


def test_restricted_and_excluded_logits_split_the_key_components():
    p = 13
    keys = [3]
    logits = cos_logits(p, {3: 4.0}) + 0.5 * cos_logits(p, {1: 1.0}) + 2.0
    r = restricted_logits(logits, keys)
    e = excluded_logits(logits, keys)
    assert torch.allclose(r, cos_logits(p, {3: 4.0}) + 2.0, atol=1e-10)
    assert torch.allclose(e, 0.5 * cos_logits(p, {1: 1.0}) + 2.0, atol=1e-10)


def test_progress_losses_on_a_model_that_uses_only_the_key_frequency():
    p = 11
    a = torch.arange(p)
    labels = (a[:, None] + a[None, :]) % p
    clean = 10 * cos_logits(p, {2: 1.0})
    noise = 0.5 * torch.randn(p, p, p, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    mask = torch.rand(p, p, generator=torch.Generator().manual_seed(1)) < 0.5
    losses = progress_losses(clean + noise, labels, mask, [2])
    assert losses.restricted_loss == pytest.approx(cross_entropy(
        clean + noise.mean(dim=(0, 1), keepdim=True) + restricted_logits(noise, [2])
        - noise.mean(dim=(0, 1), keepdim=True), labels), rel=1e-9)
    assert losses.restricted_loss < losses.full_loss  # the noise only hurts
    assert losses.excluded_loss > 2.0 > losses.train_loss  # nothing left to predict with
    assert losses.train_loss == pytest.approx(cross_entropy((clean + noise)[mask], labels[mask]))


def test_cross_entropy_is_float64_accurate():
    logits = torch.tensor([[40.0, 0.0, 0.0]])
    assert cross_entropy(logits, torch.tensor([0])) == pytest.approx(2 * math.exp(-40), rel=1e-6)


def test_bad_keys_and_shapes():
    with pytest.raises(UserError):
        logit_fit(torch.zeros(5, 5, 5), [3])
    with pytest.raises(UserError):
        logit_fit(torch.zeros(5, 5, 4), [1])


def test_logit_fourier_norm_map_lights_up_the_key_block():
    p, k = 13, 4
    m = logit_fourier_norm_map(cos_logits(p, {k: 2.0}))
    assert m.shape == (p, p)
    block = [2 * k - 1, 2 * k]
    assert float(m[block][:, block].pow(2).sum() / m.pow(2).sum()) == pytest.approx(1.0, abs=1e-5)
