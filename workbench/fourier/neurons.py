"""Neuron frequencies: which single frequency explains each MLP neuron over the (a, b) grid.

Method (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"):
centre each neuron's activation over all ``n^2`` inputs, take its 2-D Fourier transform
``B X B^T`` and, for every frequency ``k``, the fraction of the variance lying in the
``{const, cos k, sin k} x {const, cos k, sin k}`` block. The neuron's frequency is the argmax and
it is *explained* when that fraction exceeds 0.85 (the reference run explains ~85% of neurons).

Implementation: only the coefficients inside the blocks are needed, so after transforming
the a axis (``B X``, one matrix product for all neurons) the b axis is transformed only onto
the const, cos k and sin k rows that pair with each row (a batched product per frequency),
halving the work of a full ``B X B^T``. Centring removes exactly the const x const
coefficient, which is therefore left out; the total is the centred sum of squares (Parseval).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.errors import UserError
from workbench.fourier.basis import fourier_basis

EXPLAINED_THRESHOLD = 0.85


@dataclass(frozen=True)
class NeuronFrequencies:
    """Per-neuron results: ``fractions[k, i]`` is neuron i's variance share in frequency k's block
    (row 0, the constant block, is zero after centring); ``frequency[i]`` the argmax ``k`` (0 for
    a dead neuron) and ``explained[i]`` the share at that frequency."""

    frequency: torch.Tensor  # [d_mlp] long
    explained: torch.Tensor  # [d_mlp] float64
    fractions: torch.Tensor  # [n // 2 + 1, d_mlp] float64
    threshold: float = EXPLAINED_THRESHOLD

    @property
    def explained_share(self) -> float:
        """Share of neurons whose best frequency explains more than ``threshold``."""
        return float((self.explained > self.threshold).double().mean())

    def to_json(self) -> list[dict]:
        return [{"frequency": int(f), "explained_fraction": float(e)}
                for f, e in zip(self.frequency.tolist(), self.explained.tolist())]


def block_fractions(acts: torch.Tensor) -> torch.Tensor:
    """Variance share of each frequency block for every neuron.

    ``acts``: ``[n, n, d_mlp]`` activations over the (a, b) grid (Z_n addition layout).
    Returns ``[n // 2 + 1, d_mlp]`` (float64).
    """
    if acts.ndim != 3 or acts.shape[0] != acts.shape[1]:
        raise UserError(f"neuron activations must be [n, n, d_mlp], got {tuple(acts.shape)}")
    n, _, d_mlp = acts.shape
    dtype = acts.dtype if acts.dtype in (torch.float32, torch.float64) else torch.float32
    basis = fourier_basis(n, dtype)
    b = basis.matrix  # [n, n]
    x = acts.to(dtype)
    flat = x.reshape(n * n, d_mlp)
    mean = flat.mean(dim=0)  # [d_mlp]
    total = (flat.pow(2).sum(dim=0) - n * n * mean.pow(2)).double()  # (vector_norm is slower)
    left = (b @ x.reshape(n, -1)).reshape(n, n, d_mlp)  # [i, b, m]: a axis transformed
    n_pairs = (n - 1) // 2  # frequencies with both cos (row 2k - 1) and sin (row 2k)
    # C[i, j] = sum_b left[i, b] B[j, b], only inside the {0, cos k, sin k}^2 blocks
    pair_left = left[1:1 + 2 * n_pairs].reshape(n_pairs, 2, n, d_mlp)  # [K, i, b, m]
    pair_b = b[1:1 + 2 * n_pairs].reshape(n_pairs, 1, 2, n)  # [K, 1, j, b]
    inner = torch.matmul(pair_b, pair_left)  # [K, i, j, m]
    col0 = left.sum(dim=1) * b[0, 0]  # [n, d_mlp]  C[i, const]
    row0 = b @ left[0]  # [n, d_mlp]  C[const, j]
    edge = col0.pow(2) + row0.pow(2)  # [n, d_mlp]
    block = inner.pow(2).sum(dim=(1, 2)) + edge[1:1 + 2 * n_pairs].reshape(n_pairs, 2, -1).sum(1)
    if n % 2 == 0:  # Nyquist frequency n / 2: a cosine row only
        nyq = (left[n - 1] * b[n - 1][:, None]).sum(dim=0)  # [d_mlp]
        block = torch.cat([block, (nyq.pow(2) + edge[n - 1])[None]])
    block = block.double()  # [n // 2, d_mlp]
    frac = torch.where(total > 0, block / total.clamp_min(1e-300), torch.zeros_like(block))
    return torch.cat([torch.zeros(1, d_mlp, dtype=torch.float64), frac.clamp(0.0, 1.0)])


def neuron_frequencies(acts: torch.Tensor,
                       threshold: float = EXPLAINED_THRESHOLD) -> NeuronFrequencies:
    """Each neuron's best frequency and the variance share it explains."""
    fractions = block_fractions(acts)  # [n // 2 + 1, d_mlp]
    explained, frequency = fractions.max(dim=0)
    frequency = torch.where(explained > 0, frequency, torch.zeros_like(frequency))
    return NeuronFrequencies(frequency=frequency, explained=explained, fractions=fractions,
                             threshold=threshold)
