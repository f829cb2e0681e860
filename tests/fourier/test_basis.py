import math

import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.basis import (fourier_basis, frequency_norms, frequency_power, inverse_1d,
                                     sum_directions, transform_1d, transform_2d)


@pytest.mark.parametrize("n", [7, 12, 113])
def test_basis_is_orthonormal_with_documented_row_order(n):
    b = fourier_basis(n)
    assert torch.allclose(b.matrix @ b.matrix.T, torch.eye(n, dtype=torch.float64), atol=1e-10)
    assert b.labels[0] == "const" and b.labels[1] == "cos 1" and b.labels[2] == "sin 1"
    x = torch.arange(n, dtype=torch.float64)
    assert torch.allclose(b.matrix[b.cos_index(2)], torch.cos(4 * math.pi * x / n) * math.sqrt(2 / n))
    assert b.n_freqs == n // 2
    if n % 2 == 0:
        assert b.labels[-1] == f"cos {n // 2}" and b.sin_index(n // 2) is None


def test_transform_roundtrip_and_pure_cosine_has_one_frequency():
    n = 13
    x = torch.cos(2 * math.pi * 4 * torch.arange(n, dtype=torch.float64) / n)[:, None] * torch.randn(1, 5, dtype=torch.float64)
    c = transform_1d(x, dim=0)
    assert torch.allclose(inverse_1d(c, dim=0), x, atol=1e-12)
    norms = frequency_norms(c)
    assert norms.shape == (n // 2 + 1,)
    assert norms[4] == pytest.approx(float(x.norm()), rel=1e-10)
    assert float(norms.pow(2).sum() - norms[4] ** 2) < 1e-20
    assert torch.allclose(frequency_power(c), norms.pow(2))


def test_transform_2d_matches_dense_definition():
    n = 9
    x = torch.randn(n, n, 3, dtype=torch.float64)
    b = fourier_basis(n).matrix
    expected = torch.stack([b @ x[..., i] @ b.T for i in range(3)], dim=-1)
    assert torch.allclose(transform_2d(x), expected, atol=1e-12)
    with pytest.raises(UserError):
        transform_2d(torch.zeros(3, 4))


def test_sum_directions_match_basis_products():
    n, k = 11, 3
    b = fourier_basis(n).matrix
    c, s = b[2 * k - 1], b[2 * k]
    d = sum_directions(n, k)
    assert torch.allclose(d[0], (torch.outer(c, c) - torch.outer(s, s)) / math.sqrt(2), atol=1e-12)
    assert torch.allclose(d[1], (torch.outer(s, c) + torch.outer(c, s)) / math.sqrt(2), atol=1e-12)
    assert d.flatten(1).norm(dim=1) == pytest.approx([1.0, 1.0])
    with pytest.raises(UserError):
        sum_directions(n, 0)
