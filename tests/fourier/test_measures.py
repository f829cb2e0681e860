import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.measures import (detect_key_frequencies, embedding_fourier_norms, fourier_gini,
                                        gini, key_fraction, key_frequencies_from_neurons,
                                        sum_squared_weights, unembedding_fourier_norms)


def cos_embedding(p, freqs, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(p, dtype=torch.float64)
    w = torch.zeros(p + 1, d, dtype=torch.float64)  # the extra row is the "=" token
    for k in freqs:
        w[:p] += torch.cos(2 * math.pi * k * x / p)[:, None] * torch.randn(1, d, generator=g, dtype=torch.float64)
        w[:p] += torch.sin(2 * math.pi * k * x / p)[:, None] * torch.randn(1, d, generator=g, dtype=torch.float64)
    w[p] = 100.0  # must be ignored
    return w


def test_pure_cosine_embedding_has_all_norm_at_its_frequency():
    p = 23
    norms = embedding_fourier_norms(cos_embedding(p, [5]), n=p)
    assert norms.shape == (p // 2 + 1,)
    assert key_fraction(norms, [5]) == pytest.approx(1.0, abs=1e-12)
    assert key_fraction(norms, [4]) == pytest.approx(0.0, abs=1e-12)
    assert detect_key_frequencies(norms) == [5]


def test_key_frequency_detection_finds_the_planted_set_and_nothing_in_noise():
    p = 113
    w_e = cos_embedding(p, [14, 35, 41, 42, 52], d=128) + 0.02 * torch.randn(p + 1, 128, dtype=torch.float64)
    w_l = cos_embedding(p, [14, 35, 41, 42, 52], d=512, seed=1)[:p].T
    keys = detect_key_frequencies(embedding_fourier_norms(w_e, n=p), unembedding_fourier_norms(w_l))
    assert sorted(keys) == [14, 35, 41, 42, 52]
    noise = torch.randn(p, 128, dtype=torch.float64)
    assert detect_key_frequencies(embedding_fourier_norms(noise)) == []


def test_unembedding_norms_are_over_the_class_axis():
    p = 17
    w_l = torch.cos(2 * math.pi * 3 * torch.arange(p) / p)[None, :] * torch.randn(8, 1)
    norms = unembedding_fourier_norms(w_l)
    assert key_fraction(norms, [3]) == pytest.approx(1.0, abs=1e-6)


def test_gini_uniform_is_zero_and_one_hot_is_maximal():
    assert gini(torch.ones(10)) == pytest.approx(0.0, abs=1e-12)
    assert gini(torch.tensor([0.0] * 9 + [3.0])) == pytest.approx(0.9)
    assert gini(torch.tensor([1.0, 3.0])) == pytest.approx(0.25)  # |1-3|*2 / (2*2*4)
    assert fourier_gini(torch.tensor([50.0, 1.0, 1.0])) == pytest.approx(0.0)  # constant excluded
    with pytest.raises(UserError):
        gini(torch.tensor([-1.0, 2.0]))


def test_sum_squared_weights_counts_every_float_tensor():
    state = {"a": torch.ones(2, 3), "b": torch.tensor([2.0]), "steps": torch.tensor([7])}
    assert sum_squared_weights(state) == pytest.approx(10.0)


def test_key_frequencies_from_neuron_clusters():
    freq = torch.tensor([3, 3, 3, 5, 5, 7, 0])
    expl = torch.tensor([0.9, 0.95, 0.99, 0.9, 0.9, 0.5, 0.0])
    assert key_frequencies_from_neurons(freq, expl) == [3, 5]
