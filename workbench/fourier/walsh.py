"""Boolean (Walsh-Hadamard) Fourier analysis for sparse parity: spectra of functions on
{0,1}^n, per-neuron spectra, parity-set detection from first-layer weights, hidden progress.

Method: every f: {0,1}^n -> R is ``sum_S f^(S) chi_S(x)`` with ``chi_S(x) = (-1)^(sum_{i in S}
x_i)`` and ``f^(S) = E_x[f(x) chi_S(x)]`` (O'Donnell, "Analysis of Boolean Functions", ch. 1);
a k-sparse parity on S is the single coefficient ``chi_S``. For sparse-parity networks
(Barak et al. 2022, "Hidden progress in deep learning"; Edelman et al. 2023, "Pareto frontiers
in neural feature learning"; Morwani et al. 2024 for the margin view: each neuron's support is
the parity set) the parity set shows up in the first-layer weights long before the loss moves:
we take the ``k`` input coordinates with the largest weight norm across neurons, and measure
*hidden progress* as the share of first-layer squared weight mass on the true support.

Conventions: a table is indexed by ``x = sum_i x_i 2^i`` (bit i = coordinate i); a set S is a
sorted tuple of coordinates (its bitmask indexes the coefficient table). Networks usually read
inputs as ``z = 1 - 2x`` in {+1, -1} (``encoding="pm1"``), so that ``chi_S = prod_{i in S} z_i``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workbench.activations import ACTIVATIONS
from workbench.errors import UserError

MAX_EXACT_BITS = 16
# the model activations come from the core table; the rest are idealised neuron models
_ACTS = {"relu": ACTIVATIONS["relu"], "gelu": ACTIVATIONS["gelu"], "identity": lambda x: x,
         "square": lambda x: x * x, "tanh": torch.tanh}


@dataclass(frozen=True)
class WalshSpectrum:
    """Walsh coefficients ``coefficients[i, ...]`` of the sets ``sets[i]`` over n bits."""

    n: int
    sets: list[tuple[int, ...]]
    coefficients: torch.Tensor  # [n_sets, ...]

    def top(self, m: int = 5) -> list[tuple[tuple[int, ...], float]]:
        """The ``m`` sets with the largest coefficient magnitude (summed over trailing dims)."""
        mag = self.coefficients.reshape(len(self.sets), -1).pow(2).sum(dim=1).sqrt()
        order = torch.argsort(mag, descending=True)[:m]
        return [(self.sets[int(i)], float(mag[i])) for i in order]

    def power_by_degree(self) -> list[float]:
        """Share of the total squared coefficient mass at each degree ``|S|`` (0..n)."""
        power = self.coefficients.reshape(len(self.sets), -1).pow(2).sum(dim=1)
        out = torch.zeros(self.n + 1, dtype=torch.float64)
        out.index_add_(0, torch.tensor([len(s) for s in self.sets]), power.double())
        total = out.sum()
        return (out / total if total > 0 else out).tolist()

    def to_json(self, m: int = 10) -> dict:
        return {"n": self.n, "top": [{"set": list(s), "coefficient": c} for s, c in self.top(m)],
                "power_by_degree": self.power_by_degree()}


def _mask_to_set(mask: int, n: int) -> tuple[int, ...]:
    return tuple(i for i in range(n) if mask >> i & 1)


def _n_bits(size: int) -> int:
    n = size.bit_length() - 1
    if size < 1 or 1 << n != size:
        raise UserError(f"a truth table must have 2^n rows, got {size}")
    return n


def walsh_hadamard(table: torch.Tensor) -> torch.Tensor:
    """Normalised fast Walsh-Hadamard transform along axis 0: ``f^(S) = E_x f(x) chi_S(x)``."""
    n = _n_bits(table.shape[0])
    rest = table.shape[1:]
    x = table.double().reshape(1 << n, -1)
    for i in range(n):
        v = x.reshape(-1, 2, 1 << i, x.shape[-1])  # middle axis = bit i
        x = torch.stack([v[:, 0] + v[:, 1], v[:, 0] - v[:, 1]], dim=1).reshape(1 << n, -1)
    return (x / (1 << n)).reshape(1 << n, *rest)


def walsh_spectrum(table: torch.Tensor) -> WalshSpectrum:
    """Exact spectrum of a function given as a ``[2^n, ...]`` table."""
    coeffs = walsh_hadamard(table)
    n = _n_bits(table.shape[0])
    return WalshSpectrum(n=n, sets=[_mask_to_set(m, n) for m in range(1 << n)],
                         coefficients=coeffs)


def subsets_up_to(n: int, max_degree: int) -> list[tuple[int, ...]]:
    return [s for d in range(max_degree + 1) for s in itertools.combinations(range(n), d)]


def sampled_walsh_spectrum(inputs: torch.Tensor, outputs: torch.Tensor, max_degree: int,
                           chunk: int = 4096) -> WalshSpectrum:
    """Monte-Carlo spectrum from uniform samples: ``inputs [m, n]`` in {0, 1}, ``outputs
    [m, ...]``; coefficients of every set of size <= ``max_degree``."""
    if inputs.ndim != 2 or outputs.shape[0] != inputs.shape[0]:
        raise UserError(f"inputs must be [m, n] and outputs [m, ...], got "
                        f"{tuple(inputs.shape)} and {tuple(outputs.shape)}")
    n = inputs.shape[1]
    sets = subsets_up_to(n, max_degree)
    z = 1.0 - 2.0 * inputs.double()  # [m, n] chi_{i} = z_i
    y = outputs.double().reshape(outputs.shape[0], -1)  # [m, r]
    padded = torch.cat([z, torch.ones(z.shape[0], 1, dtype=torch.float64)], dim=1)
    out = []
    for start in range(0, len(sets), chunk):
        part = sets[start:start + chunk]
        idx = torch.tensor([list(s) + [n] * (max_degree - len(s)) for s in part],
                           dtype=torch.long).reshape(len(part), max_degree)
        chi = padded[:, idx].prod(dim=-1) if max_degree else torch.ones(z.shape[0], len(part),
                                                                         dtype=torch.float64)
        out.append(chi.T @ y / z.shape[0])  # [chunk, r]
    coeffs = torch.cat(out).reshape(len(sets), *outputs.shape[1:])
    return WalshSpectrum(n=n, sets=sets, coefficients=coeffs)


def all_inputs(n: int) -> torch.Tensor:
    """Every point of {0,1}^n as ``[2^n, n]`` in table order (row x has bit i in column i)."""
    if n > MAX_EXACT_BITS:
        raise UserError(f"exact tables are limited to n <= {MAX_EXACT_BITS} bits, got {n}")
    x = torch.arange(1 << n)
    return (x[:, None] >> torch.arange(n)[None, :]) & 1


def parity_table(n: int, support: Sequence[int]) -> torch.Tensor:
    """``chi_S`` as a ``[2^n]`` table of +-1."""
    bits = all_inputs(n)[:, list(support)] if support else torch.zeros(1 << n, 0, dtype=torch.long)
    return 1.0 - 2.0 * (bits.sum(dim=1) % 2).double()


def neuron_walsh_spectra(w_in: torch.Tensor, b_in: torch.Tensor | None = None, *,
                         activation: str = "relu", encoding: str = "pm1",
                         max_degree: int | None = None, n_samples: int = 8192,
                         seed: int = 0) -> WalshSpectrum:
    """Spectra of each first-layer neuron ``x -> act(w . z(x) + b)``: ``coefficients
    [n_sets, n_neurons]``. Exact for ``n <= 16`` when ``max_degree`` is None, else sampled."""
    if w_in.ndim != 2:
        raise UserError(f"first-layer weights must be [n_neurons, n_bits], got "
                        f"{tuple(w_in.shape)}")
    if activation not in _ACTS or encoding not in ("pm1", "01"):
        raise UserError(f"activation must be one of {sorted(_ACTS)} and encoding pm1 or 01, got "
                        f"{activation!r}, {encoding!r}")
    n = w_in.shape[1]
    b = torch.zeros(w_in.shape[0]) if b_in is None else b_in

    def neurons(x: torch.Tensor) -> torch.Tensor:
        z = 1.0 - 2.0 * x.double() if encoding == "pm1" else x.double()
        return _ACTS[activation](z @ w_in.double().T + b.double())  # [m, n_neurons]

    if max_degree is None:
        return walsh_spectrum(neurons(all_inputs(n)))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n_samples, n), generator=gen)
    return sampled_walsh_spectrum(x, neurons(x), max_degree)


@dataclass(frozen=True)
class ParitySet:
    """Detected support (sorted), per-coordinate weight norms and the separation ``margin``:
    the smallest in-set norm over the largest out-of-set norm (> 1 means separated)."""

    support: tuple[int, ...]
    scores: torch.Tensor  # [n]
    margin: float


def detect_parity_set(w_in: torch.Tensor, k: int) -> ParitySet:
    """The ``k`` coordinates with the largest first-layer weight norm across neurons."""
    if w_in.ndim != 2 or not 0 < k <= w_in.shape[1]:
        raise UserError(f"need weights [n_neurons, n_bits] and 0 < k <= n_bits, got "
                        f"{tuple(w_in.shape)} and k={k!r}")
    scores = w_in.double().norm(dim=0)  # [n]
    order = torch.argsort(scores, descending=True)
    inside, outside = scores[order[:k]], scores[order[k:]]
    margin = (float(inside.min() / outside.max()) if outside.numel() and outside.max() > 0
              else math.inf)
    return ParitySet(support=tuple(sorted(int(i) for i in order[:k])), scores=scores,
                     margin=margin)


def hidden_progress(w_in: torch.Tensor, support: Sequence[int]) -> float:
    """Share of first-layer squared weight mass on the true support coordinates."""
    mass = w_in.double().pow(2).sum(dim=0)  # [n]
    total = float(mass.sum())
    return float(mass[list(support)].sum()) / total if total > 0 else 0.0
