"""Fourier spectrum of number-token representations along the number axis (any model).

Method (Zhou et al. 2024, "Pre-trained large language models use Fourier features to compute
addition"): stack the embeddings of the tokens for 0, 1, ..., N-1 into ``[N, d]``, centre over
the numbers, take the discrete Fourier transform along the number axis and report, per
frequency ``k`` (period ``N / k``), the magnitude ``sqrt(sum_d |X_k,d|^2 / N)``. Pretrained LMs
show spikes at periods ~2, 2.5, 5 and 10 (``k = N/2, 2N/5, N/5, N/10``). The same applies to
logit-lens outputs per layer, ``[layers, N, d]`` (a residual stream read through the
unembedding restricted to the number tokens, or any per-number vector).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workbench.errors import UserError

DEFAULT_PERIODS = (2.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class NumberSpectrum:
    """``magnitude[..., k]`` for ``k = 0 .. N // 2``; ``periods[k] = N / k`` (inf at k = 0)."""

    n_numbers: int
    frequencies: torch.Tensor  # [K] long
    periods: torch.Tensor  # [K] float64
    magnitude: torch.Tensor  # [..., K] float64

    def bin_for_period(self, period: float) -> int:
        """The frequency bin whose period is nearest to ``period``."""
        if period <= 0:
            raise UserError(f"period must be positive, got {period!r}")
        k = round(self.n_numbers / period)
        return min(max(k, 1), self.n_numbers // 2)

    def at_periods(self, periods: Sequence[float] = DEFAULT_PERIODS) -> dict[float, torch.Tensor]:
        return {float(t): self.magnitude[..., self.bin_for_period(t)] for t in periods}

    def energy_share(self, periods: Sequence[float] = DEFAULT_PERIODS) -> dict[float, torch.Tensor]:
        """Share of the non-constant spectrum energy in each period's bin, ``[...]`` per period.

        Energy counts both conjugate bins (Parseval): weight 2 for ``0 < k < N/2``, 1 at the
        Nyquist bin ``k = N/2`` (even ``N``), so the shares of all bins sum to 1.
        """
        weight = torch.full((self.magnitude.shape[-1],), 2.0, dtype=torch.float64)
        weight[0] = 0.0
        if self.n_numbers % 2 == 0:
            weight[-1] = 1.0
        energy = self.magnitude.double().pow(2) * weight  # [..., K]
        total = energy.sum(dim=-1).clamp_min(torch.finfo(torch.float64).tiny)  # [...]
        return {float(t): energy[..., self.bin_for_period(t)] / total for t in periods}

    def top_periods(self, m: int = 5) -> list[tuple[float, float]]:
        """Largest non-constant components ``(period, magnitude)`` (magnitudes averaged over any
        leading axes, e.g. layers)."""
        mag = self.magnitude.reshape(-1, self.magnitude.shape[-1]).mean(dim=0)[1:]
        order = torch.argsort(mag, descending=True)[:m]
        return [(float(self.periods[i + 1]), float(mag[i])) for i in order]

    def to_json(self, periods: Sequence[float] = DEFAULT_PERIODS) -> dict:
        return {"n_numbers": self.n_numbers, "periods": self.periods[1:].tolist(),
                "magnitude": self.magnitude[..., 1:].tolist(),
                "at_periods": {str(t): v.tolist() for t, v in self.at_periods(periods).items()},
                "top_periods": [list(x) for x in self.top_periods()]}


def number_spectrum(x: torch.Tensor, *, center: bool = True) -> NumberSpectrum:
    """Spectrum along axis -2 of ``x`` ``[..., N, d]`` (``[N, d]`` or ``[layers, N, d]``)."""
    if x.ndim < 2 or x.shape[-2] < 2:
        raise UserError(f"number representations must be [..., n_numbers >= 2, d], got "
                        f"{tuple(x.shape)}")
    n = x.shape[-2]
    v = x.double()
    if center:
        v = v - v.mean(dim=-2, keepdim=True)
    coeffs = torch.fft.rfft(v, dim=-2)  # [..., N // 2 + 1, d]
    magnitude = (coeffs.abs().pow(2).sum(dim=-1) / n).sqrt()  # [..., K]
    k = torch.arange(n // 2 + 1)
    periods = torch.where(k > 0, n / k.clamp_min(1).double(),
                          torch.full_like(k, float("inf"), dtype=torch.float64))
    return NumberSpectrum(n_numbers=n, frequencies=k, periods=periods, magnitude=magnitude)


def logit_lens_spectrum(x: torch.Tensor, *, center: bool = True) -> NumberSpectrum:
    """Per-layer spectra of ``[layers, N, d]`` outputs: ``magnitude [layers, K]``."""
    if x.ndim != 3:
        raise UserError(f"logit-lens outputs must be [layers, n_numbers, d], got "
                        f"{tuple(x.shape)}")
    return number_spectrum(x, center=center)
