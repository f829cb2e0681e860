import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.number_tokens import logit_lens_spectrum, number_spectrum


def periodic(n, period, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(n, dtype=torch.float64)
    return torch.cos(2 * math.pi * x / period)[:, None] * torch.randn(1, d, generator=g, dtype=torch.float64)


def test_period_10_and_2_embeddings_peak_at_their_periods():
    e = periodic(100, 10) + 0.5 * periodic(100, 2, seed=1) + 3.0  # offset removed by centring
    spec = number_spectrum(e)
    top = spec.top_periods(2)
    assert [t for t, _ in top] == [10.0, 2.0]
    at = spec.at_periods()
    assert float(at[10.0]) > 0 and float(at[5.0]) == pytest.approx(0.0, abs=1e-9)
    assert float(at[2.5]) == pytest.approx(0.0, abs=1e-9)
    assert spec.bin_for_period(2.5) == 40
    # Parseval: the magnitudes carry the centred norm
    full = spec.magnitude.pow(2) * torch.tensor([1.0] + [2.0] * 49 + [1.0], dtype=torch.float64)
    assert float(full.sum()) == pytest.approx(float((e - e.mean(0)).pow(2).sum()))


def test_logit_lens_spectrum_per_layer():
    x = torch.stack([periodic(60, 5), periodic(60, 2.5), periodic(60, 10)])  # [3, 60, 8]
    spec = logit_lens_spectrum(x)
    assert spec.magnitude.shape == (3, 31)
    assert [int(spec.magnitude[i, 1:].argmax()) + 1 for i in range(3)] == [12, 24, 6]
    assert "at_periods" in spec.to_json()
    with pytest.raises(UserError):
        logit_lens_spectrum(torch.zeros(4, 5))
