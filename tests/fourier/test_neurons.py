import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.basis import fourier_basis, transform_2d
from workbench.fourier.neurons import block_fractions, neuron_frequencies


def grid(p):
    a = torch.arange(p, dtype=torch.float64)
    return a[:, None], a[None, :]


@pytest.mark.parametrize("p", [13, 12])
def test_neuron_equal_to_cos_of_sum_is_fully_explained_at_its_frequency(p):
    a, b = grid(p)
    acts = torch.stack([torch.cos(2 * math.pi * 4 * (a + b) / p),
                        3 + torch.sin(2 * math.pi * 2 * a / p) * torch.cos(2 * math.pi * 2 * b / p),
                        torch.cos(2 * math.pi * 5 * a / p) + 0.1 * torch.cos(2 * math.pi * 1 * b / p)],
                       dim=-1)  # [p, p, 3]
    nf = neuron_frequencies(acts)
    assert nf.frequency.tolist() == [4, 2, 5]
    assert nf.explained[:2].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert float(nf.explained[2]) == pytest.approx(1 / 1.01, abs=1e-6)
    assert nf.explained_share == pytest.approx(1.0)


def test_block_fractions_match_the_dense_basis_definition():
    p = 11
    acts = torch.relu(torch.randn(p, p, 6, dtype=torch.float64))
    centred = acts - acts.mean(dim=(0, 1))
    power = transform_2d(centred).pow(2)
    freq = fourier_basis(p).freq
    for k in range(1, p // 2 + 1):
        rows = (freq == k) | (freq == 0)
        block = power[rows][:, rows].sum(dim=(0, 1)) / power.sum(dim=(0, 1))
        assert torch.allclose(block_fractions(acts)[k], block, atol=1e-6)


def test_dead_neuron_and_bad_shapes():
    nf = neuron_frequencies(torch.zeros(5, 5, 2))
    assert nf.explained.tolist() == [0.0, 0.0] and nf.frequency.tolist() == [0, 0]
    assert nf.to_json()[0] == {"frequency": 0, "explained_fraction": 0.0}
    with pytest.raises(UserError):
        block_fractions(torch.zeros(4, 5, 2))
