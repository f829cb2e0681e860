"""Weight-space Fourier measures: per-frequency norms of W_E and W_L, key frequencies, the
key-frequency share, the Gini coefficient and the sum of squared weights.

Method (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"):
the embedding ``W_E`` (token axis) and the neuron-logit map ``W_L = W_out W_U`` (class axis) are
written in the real Fourier basis over Z_n; a trained grokking model concentrates nearly all of
their norm on a few *key frequencies*. Progress measures: the Gini coefficient of these norms
(rises sharply during cleanup) and the sum of squared weights (falls during cleanup).

Key-frequency rule (ours, documented because the paper picks them by eye): average the
per-frequency power shares (constant excluded) of every supplied weight matrix, and call ``k``
key when its share is at least ``factor`` times the uniform share ``1 / n_freqs``. With the
default ``factor = 3`` a random Gaussian matrix of the reference shape yields no key frequency
(its shares fluctuate by ~10% around uniform), while the 3-7 key frequencies of a trained model
carry 5-40% each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from workbench.errors import UserError
from workbench.fourier.basis import frequency_norms, transform_1d


def embedding_fourier_norms(w_e: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """Norm of ``W_E`` per frequency over the token axis.

    ``w_e``: ``[n(+extra), d_model]``; rows past ``n`` (the "=" token) are ignored.
    Returns ``[n // 2 + 1]`` (index 0 = constant component).
    """
    n = w_e.shape[0] if n is None else n
    if w_e.ndim != 2 or w_e.shape[0] < n:
        raise UserError(f"W_E must be [>= {n}, d_model], got shape {tuple(w_e.shape)}")
    return frequency_norms(transform_1d(w_e[:n].double(), dim=0), dim=0)


def unembedding_fourier_norms(w_l: torch.Tensor) -> torch.Tensor:
    """Norm of ``W_L`` ``[d_mlp, n]`` per frequency over the class axis (``[n // 2 + 1]``)."""
    if w_l.ndim != 2:
        raise UserError(f"W_L must be [d_mlp, n_classes], got shape {tuple(w_l.shape)}")
    return frequency_norms(transform_1d(w_l.double(), dim=1), dim=1)


def frequency_shares(norms: torch.Tensor) -> torch.Tensor:
    """Power share of each non-constant frequency (``[n_freqs]``, index ``k - 1``, sums to 1)."""
    power = norms[1:].double().pow(2)
    total = power.sum()
    return power / total if total > 0 else torch.zeros_like(power)


def detect_key_frequencies(*norms: torch.Tensor, factor: float = 3.0,
                           max_keys: int | None = None) -> list[int]:
    """Key frequencies from per-frequency norm vectors (see the module docstring for the rule).

    Returns frequencies sorted by decreasing mean share (at most ``max_keys``).
    """
    if not norms:
        raise UserError("detect_key_frequencies needs at least one norm vector")
    shares = torch.stack([frequency_shares(x) for x in norms]).mean(dim=0)  # [n_freqs]
    n_freqs = shares.numel()
    order = torch.argsort(shares, descending=True)
    keys = [int(i) + 1 for i in order if shares[i] >= factor / n_freqs]
    return keys[:max_keys] if max_keys is not None else keys


def key_frequencies_from_neurons(frequency: torch.Tensor, explained: torch.Tensor,
                                 threshold: float = 0.85, min_share: float = 0.02) -> list[int]:
    """Alternative rule: frequencies of clusters of explained neurons.

    A frequency is key if at least ``min_share`` of the explained neurons (fraction >
    ``threshold``) have it. Sorted by decreasing cluster size.
    """
    freqs = frequency[explained > threshold]
    if freqs.numel() == 0:
        return []
    counts = torch.bincount(freqs)
    order = torch.argsort(counts, descending=True)
    return [int(k) for k in order if k > 0 and counts[k] >= min_share * freqs.numel()]


def key_fraction(norms: torch.Tensor, keys: Sequence[int]) -> float:
    """Share of the total norm² (constant included) carried by the key frequencies."""
    power = norms.double().pow(2)
    total = float(power.sum())
    if total == 0:
        return 0.0
    return float(power[list(keys)].sum()) / total if keys else 0.0


def gini(x: torch.Tensor) -> float:
    """Gini coefficient of non-negative values: 0 when uniform, ``(m - 1) / m`` when one-hot.

    ``G = sum_i sum_j |x_i - x_j| / (2 m sum x)``, computed from the sorted values.
    """
    x = x.detach().double().flatten()
    if x.numel() == 0 or bool((x < 0).any()):
        raise UserError("Gini coefficient needs a non-empty vector of non-negative values")
    total = float(x.sum())
    if total == 0:
        return 0.0
    m = x.numel()
    xs = torch.sort(x).values
    ranks = torch.arange(1, m + 1, dtype=torch.float64)
    return float((2 * (ranks * xs).sum()) / (m * total) - (m + 1) / m)


def fourier_gini(norms: torch.Tensor) -> float:
    """Gini of the per-frequency norms, constant component excluded."""
    return gini(norms[1:])


def sum_squared_weights(state: Mapping[str, torch.Tensor]) -> float:
    """Sum of squares of every floating-point tensor in a state dict."""
    return float(sum(t.detach().double().pow(2).sum() for t in state.values()
                     if torch.is_tensor(t) and t.is_floating_point()))
