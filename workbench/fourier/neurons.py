"""Neuron frequencies: which single frequency explains each MLP neuron over the (a, b) grid.

Method (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"):
centre each neuron's activation over all ``n^2`` inputs, take its 2-D Fourier transform
``B X B^T`` and, for every frequency ``k``, the fraction of the variance lying in the
``{const, cos k, sin k} x {const, cos k, sin k}`` block. The neuron's frequency is the argmax and
it is *explained* when that fraction exceeds 0.85 (the reference run explains ~85% of neurons).

Implementation: the block for ``k`` spans the same subspace as the complex exponentials with
frequencies ``{0, k, -k}`` on each axis, so by Parseval the block power is read off a real 2-D
FFT (``rfft2``) instead of two dense basis products; this is ``O(n^2 log n)`` per neuron and
gives the same fractions as :func:`workbench.fourier.basis.transform_2d` (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.errors import UserError

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
    Returns ``[n // 2 + 1, d_mlp]``.
    """
    if acts.ndim != 3 or acts.shape[0] != acts.shape[1]:
        raise UserError(f"neuron activations must be [n, n, d_mlp], got {tuple(acts.shape)}")
    n = acts.shape[0]
    x = acts.double()
    x = x - x.mean(dim=(0, 1), keepdim=True)
    power = torch.fft.rfft2(x.permute(2, 0, 1)).abs().pow(2)  # [d_mlp, n, n // 2 + 1]
    n_groups = n // 2 + 1
    # Columns 1..ceil(n/2)-1 stand for both +k and -k (conjugate symmetry); 0 and Nyquist once.
    col_weight = torch.full((n_groups,), 2.0, dtype=torch.float64)
    col_weight[0] = 1.0
    if n % 2 == 0:
        col_weight[-1] = 1.0
    k = torch.arange(n)
    group = torch.minimum(k, n - k)  # [n] row frequency -> frequency group
    folded = torch.zeros(power.shape[0], n_groups, n_groups, dtype=torch.float64)
    folded.index_add_(1, group, power * col_weight)  # [d_mlp, G, G]
    total = folded.sum(dim=(1, 2))  # [d_mlp]
    ks = torch.arange(1, n_groups)
    block = (folded[:, 0, 0, None] + folded[:, 0, ks] + folded[:, ks, 0]
             + folded[:, ks, ks])  # [d_mlp, n_freqs]
    frac = torch.where(total[:, None] > 0, block / total.clamp_min(1e-300)[:, None],
                       torch.zeros_like(block))
    return torch.cat([torch.zeros(power.shape[0], 1, dtype=torch.float64), frac], dim=1).T


def neuron_frequencies(acts: torch.Tensor,
                       threshold: float = EXPLAINED_THRESHOLD) -> NeuronFrequencies:
    """Each neuron's best frequency and the variance share it explains."""
    fractions = block_fractions(acts)  # [n // 2 + 1, d_mlp]
    explained, frequency = fractions.max(dim=0)
    frequency = torch.where(explained > 0, frequency, torch.zeros_like(frequency))
    return NeuronFrequencies(frequency=frequency, explained=explained, fractions=fractions,
                             threshold=threshold)
