import itertools

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.walsh import (all_inputs, detect_parity_set, hidden_progress,
                                     neuron_walsh_spectra, parity_table, sampled_walsh_spectrum,
                                     walsh_hadamard, walsh_spectrum)


def test_parity_has_a_single_walsh_coefficient():
    n, support = 6, (1, 3, 4)
    spec = walsh_spectrum(parity_table(n, support))
    nonzero = [(s, float(c)) for s, c in zip(spec.sets, spec.coefficients) if abs(c) > 1e-12]
    assert nonzero == [(support, 1.0)]
    assert spec.top(1)[0][0] == support
    assert spec.power_by_degree()[3] == pytest.approx(1.0)


def test_transform_matches_definition_and_is_invertible():
    n = 4
    f = torch.randn(1 << n, 2, dtype=torch.float64)
    x = all_inputs(n)
    coeffs = walsh_hadamard(f)
    for mask in range(1 << n):
        chi = 1 - 2 * ((x * torch.tensor([(mask >> i) & 1 for i in range(n)])).sum(1) % 2)
        assert torch.allclose(coeffs[mask], (f * chi[:, None]).mean(0))
    assert torch.allclose(walsh_hadamard(coeffs) * (1 << n), f)


def test_sampled_spectrum_of_parity():
    n, support = 20, (2, 7, 11)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (4000, n), generator=g)
    y = 1.0 - 2.0 * (x[:, list(support)].sum(1) % 2).double()
    spec = sampled_walsh_spectrum(x, y, max_degree=3)
    assert len(spec.sets) == sum(1 for d in range(4) for _ in itertools.combinations(range(n), d))
    (best, value), (_, second) = spec.top(2)
    assert best == support and value == pytest.approx(1.0) and second < 0.1


def test_parity_set_from_weights_and_hidden_progress():
    n, support = 30, (4, 9, 17)
    g = torch.Generator().manual_seed(1)
    w = 0.05 * torch.randn(64, n, generator=g)
    w[:, list(support)] += torch.randn(64, 3, generator=g)
    found = detect_parity_set(w, 3)
    assert found.support == support and found.margin > 1
    assert hidden_progress(w, support) > 0.9
    assert hidden_progress(torch.ones(8, n), support) == pytest.approx(3 / n)
    with pytest.raises(UserError):
        detect_parity_set(w, 0)


def test_neuron_spectra_support_is_the_weight_support():
    n = 8
    w = torch.zeros(3, n)
    w[0, [1, 2]] = 1.0  # relu(z1 + z2) has Walsh support within {1, 2}
    w[1, 5] = -2.0
    spec = neuron_walsh_spectra(w, torch.tensor([0.0, 0.5, 0.0]), activation="relu")
    assert spec.coefficients.shape == (1 << n, 3)
    for s, c in zip(spec.sets, spec.coefficients):
        if abs(c[0]) > 1e-12:
            assert set(s) <= {1, 2}
        if abs(c[1]) > 1e-12:
            assert set(s) <= {5}
    # relu(z1 + z2) = 2 [z1 = z2 = 1] = (1 + z1 + z2 + z1 z2) / 2
    assert spec.coefficients[[0, 0b10, 0b100, 0b110], 0].tolist() == pytest.approx([0.5] * 4)
    sampled = neuron_walsh_spectra(w, None, activation="square", max_degree=2, n_samples=4000)
    assert sampled.top(1)[0][0] in ((), (1, 2))
