"""Logit-space measures: the fit ``sum_k alpha_k cos(w_k (a + b - c))`` and the restricted and
excluded losses.

Method (Nanda et al. 2023, "Progress measures for grokking via mechanistic interpretability"):

- Logit fit: the trained model's logits are approximately ``sum_k alpha_k cos(w_k (a+b-c))``
  over the key frequencies (~95% of the logit variance). We centre the logits over the class
  axis for every input (softmax ignores a per-input offset; every regressor has zero mean over
  ``c``), least-squares fit one ``alpha_k`` per key frequency (the regressors are orthogonal, so
  each is an independent projection) and report ``r^2`` = explained / total sum of squares.
- Restricted loss: for every class ``c`` the logit surface over the ``(a, b)`` grid is projected
  onto the unit directions ``cos(w_k (a+b))`` and ``sin(w_k (a+b))`` of the key frequencies;
  keeping only those components plus the per-class mean gives the restricted logits. Their loss
  (over all inputs) falls to or below the full loss once the circuit has formed.
- Excluded loss: subtract the same components instead; its loss on the *training* inputs rises
  during circuit formation, while the model still fits the training set.

Every function takes logits on the Z_n addition layout (``[n, n, C]``, see
:mod:`workbench.fourier.multiplicative` for subtraction and multiplication) and computes the
losses in float64 (final losses of a grokked model are ~1e-7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from workbench.errors import UserError
from workbench.fourier.basis import sum_directions


@dataclass(frozen=True)
class LogitFit:
    """``r2``: share of the class-centred logit variance explained; ``alphas[k]`` the fitted
    coefficient of ``cos(w_k (a + b - c))``."""

    r2: float
    alphas: dict[int, float]


@dataclass(frozen=True)
class ProgressLosses:
    """Cross-entropy losses (nats, float64). ``full_loss`` and ``restricted_loss`` are over every
    input of the grid; ``train_loss`` and ``excluded_loss`` over the training inputs."""

    full_loss: float
    restricted_loss: float
    train_loss: float
    excluded_loss: float


def _check_grid(logits: torch.Tensor) -> int:
    if logits.ndim != 3 or logits.shape[0] != logits.shape[1]:
        raise UserError(f"logits must be [n, n, n_classes], got {tuple(logits.shape)}")
    return logits.shape[0]


def _check_keys(keys: Sequence[int], n: int) -> list[int]:
    keys = [int(k) for k in keys]
    bad = [k for k in keys if not 1 <= k <= n // 2]
    if bad:
        raise UserError(f"key frequencies must lie in 1..{n // 2}, got {bad}")
    return sorted(set(keys))


def key_directions(n: int, keys: Sequence[int]) -> torch.Tensor:
    """Unit grid directions ``[2 * len(keys), n, n]`` (cos, sin per key; float64)."""
    keys = _check_keys(keys, n)
    if not keys:
        return torch.zeros(0, n, n, dtype=torch.float64)
    return torch.cat([sum_directions(n, k) for k in keys])


def key_components(logits: torch.Tensor, keys: Sequence[int]) -> torch.Tensor:
    """The part of the logits in the key directions (``[n, n, C]``, float64)."""
    n = _check_grid(logits)
    d = key_directions(n, keys).reshape(-1, n * n)  # [2K, n^2]
    flat = logits.double().reshape(n * n, -1)  # [n^2, C]
    return (d.T @ (d @ flat)).reshape(logits.shape)


def restricted_logits(logits: torch.Tensor, keys: Sequence[int]) -> torch.Tensor:
    """Key-frequency components plus the per-class mean over the grid."""
    mean = logits.double().mean(dim=(0, 1), keepdim=True)  # [1, 1, C]
    return mean + key_components(logits, keys)


def excluded_logits(logits: torch.Tensor, keys: Sequence[int]) -> torch.Tensor:
    """The logits with their key-frequency components removed."""
    return logits.double() - key_components(logits, keys)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                  mask: torch.Tensor | None = None) -> float:
    """Mean float64 cross-entropy of ``logits [..., C]`` against ``labels [...]`` (where
    ``mask`` is true)."""
    logp = F.log_softmax(logits.double(), dim=-1)
    nll = -logp.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
    if mask is not None:
        nll = nll[mask.bool()]
    if nll.numel() == 0:
        return float("nan")
    return float(nll.mean())


def progress_losses(logits: torch.Tensor, labels: torch.Tensor, train_mask: torch.Tensor,
                    keys: Sequence[int]) -> ProgressLosses:
    """Full, restricted (all inputs) and train, excluded (train inputs) losses."""
    n = _check_grid(logits)
    if labels.shape != (n, n) or train_mask.shape != (n, n):
        raise UserError(f"labels and train mask must be [{n}, {n}], got "
                        f"{tuple(labels.shape)} and {tuple(train_mask.shape)}")
    x = logits.double()
    comp = key_components(x, keys)
    restricted = x.mean(dim=(0, 1), keepdim=True) + comp
    mask = train_mask.bool()
    return ProgressLosses(
        full_loss=cross_entropy(x, labels),
        restricted_loss=cross_entropy(restricted, labels),
        train_loss=cross_entropy(x[mask], labels[mask]),
        excluded_loss=cross_entropy((x - comp)[mask], labels[mask]),
    )


def logit_fit(logits: torch.Tensor, keys: Sequence[int]) -> LogitFit:
    """Fit ``sum_k alpha_k cos(w_k (a + b - c))`` to class-centred logits ``[n, n, n]``."""
    n = _check_grid(logits)
    if logits.shape[2] != n:
        raise UserError(f"the logit fit needs the class axis on Z_n too, got "
                        f"{tuple(logits.shape)}")
    keys = _check_keys(keys, n)
    x = logits.double()
    x = x - x.mean(dim=2, keepdim=True)
    total = float(x.pow(2).sum())
    if total == 0 or not keys:
        return LogitFit(r2=0.0, alphas={k: 0.0 for k in keys})
    s = (torch.arange(n)[:, None] + torch.arange(n)[None, :]) % n  # [n, n]
    c = torch.arange(n, dtype=torch.float64)
    explained, alphas = 0.0, {}
    for k in keys:
        w = 2 * math.pi * k / n
        u = torch.cos(w * s.double())  # [n, n]  cos(w(a+b))
        v = torch.sin(w * s.double())
        proj_u = torch.einsum("abc,ab->c", x, u)  # [n]
        proj_v = torch.einsum("abc,ab->c", x, v)
        # cos(w(s - c)) = cos(ws) cos(wc) + sin(ws) sin(wc)
        inner = float((proj_u * torch.cos(w * c) + proj_v * torch.sin(w * c)).sum())
        norm2 = n * n * float(torch.cos(w * c).pow(2).sum())
        alphas[k] = inner / norm2
        explained += inner * inner / norm2
    return LogitFit(r2=explained / total, alphas=alphas)
