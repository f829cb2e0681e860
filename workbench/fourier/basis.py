"""The real orthonormal Fourier basis over Z_n and the 1-D / 2-D transforms built on it.

Method (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"):
the rows of ``B`` are ``1/sqrt(n)``, then ``cos(2 pi k x / n)`` and ``sin(2 pi k x / n)``,
each normalised to unit length, for ``k = 1 .. (n - 1) // 2``. For even ``n`` (used by the
discrete-log reindexing of multiplication, where ``n = p - 1``) a last row holds the Nyquist
frequency ``k = n / 2``, ``cos(pi x) / sqrt(n)``, which has no sine partner. Row order:
``const, cos 1, sin 1, cos 2, sin 2, ...`` so ``cos k`` is row ``2k - 1`` and ``sin k`` row ``2k``.

A 1-D transform is ``B @ X`` along the chosen axis; the 2-D transform of a function on the
``(a, b)`` grid is ``B X B^T`` for every trailing (output) dimension. The unit-norm directions
``cos(w (a + b))`` and ``sin(w (a + b))`` on the grid equal ``(cos⊗cos − sin⊗sin)/√2`` and
``(sin⊗cos + cos⊗sin)/√2`` in basis coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from workbench.errors import UserError


@dataclass(frozen=True)
class FourierBasis:
    """Orthonormal real Fourier basis over Z_n.

    ``matrix[i]`` is basis row ``i`` (``[n, n]``, orthonormal rows); ``freq[i]`` its frequency
    (0 for the constant); ``labels[i]`` a name such as ``"cos 3"``.
    """

    n: int
    matrix: torch.Tensor  # [n, n]
    freq: torch.Tensor  # [n] long
    labels: tuple[str, ...]

    @property
    def n_freqs(self) -> int:
        """Number of non-zero frequencies: ``n // 2`` (``(n - 1) / 2`` for odd n)."""
        return self.n // 2

    def cos_index(self, k: int) -> int:
        return 2 * k - 1

    def sin_index(self, k: int) -> int | None:
        """Row of ``sin k``; None for the Nyquist frequency of even ``n``."""
        return None if 2 * k == self.n else 2 * k


@lru_cache(maxsize=16)
def _basis_cached(n: int, dtype: torch.dtype) -> FourierBasis:
    x = torch.arange(n, dtype=torch.float64)
    rows = [torch.full((n,), 1.0 / math.sqrt(n), dtype=torch.float64)]
    freq = [0]
    labels = ["const"]
    for k in range(1, n // 2 + 1):
        angle = 2 * math.pi * k * x / n
        c = torch.cos(angle)
        rows.append(c / c.norm())
        freq.append(k)
        labels.append(f"cos {k}")
        if 2 * k != n:
            s = torch.sin(angle)
            rows.append(s / s.norm())
            freq.append(k)
            labels.append(f"sin {k}")
    matrix = torch.stack(rows).to(dtype)  # [n, n]
    return FourierBasis(n=n, matrix=matrix, freq=torch.tensor(freq), labels=tuple(labels))


def fourier_basis(n: int, dtype: torch.dtype = torch.float64) -> FourierBasis:
    """The orthonormal Fourier basis over Z_n (cached per ``(n, dtype)``)."""
    if not isinstance(n, int) or n < 2:
        raise UserError(f"Fourier basis size must be an integer >= 2, got {n!r}")
    return _basis_cached(n, dtype)


def transform_1d(x: torch.Tensor, dim: int = 0, basis: FourierBasis | None = None) -> torch.Tensor:
    """Coefficients of ``x`` in the Fourier basis along ``dim`` (``B @ x`` on that axis)."""
    n = x.shape[dim]
    basis = basis or fourier_basis(n, x.dtype if x.is_floating_point() else torch.float64)
    b = basis.matrix.to(x.dtype)
    moved = x.movedim(dim, 0)  # [n, ...]
    out = (b @ moved.reshape(n, -1)).reshape(moved.shape)
    return out.movedim(0, dim)


def inverse_1d(coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Inverse of :func:`transform_1d` (the basis is orthonormal, so ``B^T @ c``)."""
    n = coeffs.shape[dim]
    b = fourier_basis(n, coeffs.dtype).matrix
    moved = coeffs.movedim(dim, 0)
    return (b.T @ moved.reshape(n, -1)).reshape(moved.shape).movedim(0, dim)


def transform_2d(x: torch.Tensor) -> torch.Tensor:
    """``B X B^T`` over the first two axes (the ``(a, b)`` grid) for every trailing dim.

    ``x``: ``[n, n, ...]`` -> coefficients ``[n, n, ...]`` (row = a-basis, column = b-basis).
    """
    n = x.shape[0]
    if x.shape[1] != n:
        raise UserError(f"2-D Fourier transform needs a square grid, got shape {tuple(x.shape)}")
    b = fourier_basis(n, x.dtype).matrix
    rest = x.shape[2:]
    left = (b @ x.reshape(n, -1)).reshape(n, n, -1)  # [i, b, m]
    out = (b @ left.transpose(0, 1).reshape(n, -1)).reshape(n, n, -1)  # [j, i, m]
    return out.transpose(0, 1).reshape(n, n, *rest)


def sum_directions(n: int, k: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Unit-norm grid functions ``cos(w(a+b))`` and ``sin(w(a+b))``, ``w = 2 pi k / n``.

    Returns ``[2, n, n]`` (cos, sin). For the Nyquist frequency of even ``n`` the sine is
    identically zero and is returned as zeros.
    """
    if not 1 <= k <= n // 2:
        raise UserError(f"frequency must be in 1..{n // 2} for n={n}, got {k!r}")
    s = (torch.arange(n)[:, None] + torch.arange(n)[None, :]) % n  # [n, n]
    angle = 2 * math.pi * k * s.to(torch.float64) / n
    out = torch.stack([torch.cos(angle), torch.sin(angle)])  # [2, n, n]
    norms = out.flatten(1).norm(dim=1)
    out = torch.where(norms[:, None, None] > 1e-9, out / norms.clamp_min(1e-30)[:, None, None],
                      torch.zeros_like(out))
    return out.to(dtype)


def frequency_power(coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Squared norm per frequency of basis coefficients along ``dim``, summed over other dims.

    Returns ``[n // 2 + 1]``: index 0 is the constant, index ``k`` is ``cos k`` plus ``sin k``.
    """
    n = coeffs.shape[dim]
    freq = fourier_basis(n).freq
    per_row = coeffs.movedim(dim, 0).reshape(n, -1).pow(2).sum(dim=1)  # [n]
    out = torch.zeros(n // 2 + 1, dtype=per_row.dtype)
    return out.index_add_(0, freq, per_row)


def frequency_norms(coeffs: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Norm per frequency (square root of :func:`frequency_power`); index 0 is the constant."""
    return frequency_power(coeffs, dim).sqrt()
