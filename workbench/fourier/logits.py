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
from workbench.fourier.basis import sum_directions, transform_2d


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


def _coefficients(x: torch.Tensor, keys: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit directions ``[2K, n^2]`` and the logits' coefficients on them ``[2K, C]``."""
    n = x.shape[0]
    d = key_directions(n, keys).reshape(-1, n * n)
    return d, d @ x.reshape(n * n, -1)


def key_components(logits: torch.Tensor, keys: Sequence[int]) -> torch.Tensor:
    """The part of the logits in the key directions (``[n, n, C]``, float64)."""
    n = _check_grid(logits)
    d, coef = _coefficients(logits.double(), _check_keys(keys, n))
    return (d.T @ coef).reshape(logits.shape)


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


def _fit(coef: torch.Tensor, x: torch.Tensor, keys: list[int]) -> LogitFit:
    """The cosine fit from the key coefficients of class-aligned logits ``x [n, n, n]``."""
    n = x.shape[0]
    # class-centred total sum of squares (softmax ignores a per-input offset)
    total = float(x.pow(2).sum() - x.sum(dim=2).pow(2).sum() / n)
    if total <= 0 or not keys:
        return LogitFit(r2=0.0, alphas={k: 0.0 for k in keys})
    c = torch.arange(n, dtype=torch.float64)
    explained, alphas = 0.0, {}
    for i, k in enumerate(keys):
        w = 2 * math.pi * k / n
        cos2 = float(torch.cos(w * c).pow(2).sum())  # sum_t cos^2(w t)
        sin2 = float(torch.sin(w * c).pow(2).sum())
        # <L, cos(w(a+b-c))> = sum_c cos(wc) <L_c, cos(ws)> + sin(wc) <L_c, sin(ws)>, and the
        # unit directions are cos(ws) / sqrt(n cos2), sin(ws) / sqrt(n sin2)
        inner = float((coef[2 * i] * torch.cos(w * c)).sum()) * math.sqrt(n * cos2)
        if sin2 > 1e-9:
            inner += float((coef[2 * i + 1] * torch.sin(w * c)).sum()) * math.sqrt(n * sin2)
        norm2 = n * n * cos2  # |cos(w(a+b-c))|^2 over the n^3 grid
        alphas[k] = inner / norm2
        explained += inner * inner / norm2
    return LogitFit(r2=explained / total, alphas=alphas)


def logit_fit(logits: torch.Tensor, keys: Sequence[int]) -> LogitFit:
    """Fit ``sum_k alpha_k cos(w_k (a + b - c))`` to class-centred logits ``[n, n, n]``."""
    n = _check_grid(logits)
    if logits.shape[2] != n:
        raise UserError(f"the logit fit needs the class axis on Z_n too, got "
                        f"{tuple(logits.shape)}")
    keys = _check_keys(keys, n)
    x = logits.double()
    return _fit(_coefficients(x, keys)[1], x, keys)


def progress_losses(logits: torch.Tensor, labels: torch.Tensor, train_mask: torch.Tensor,
                    keys: Sequence[int]) -> ProgressLosses:
    """Full, restricted (all inputs) and train, excluded (train inputs) losses."""
    return logit_measures(logits, labels, train_mask, keys)[1]


def logit_measures(logits: torch.Tensor, labels: torch.Tensor, train_mask: torch.Tensor,
                   keys: Sequence[int], fit_classes: torch.Tensor | None = None
                   ) -> tuple[LogitFit | None, ProgressLosses]:
    """Fit and losses sharing one projection onto the key directions.

    ``fit_classes`` lists the classes in Z_n order for the fit (None: the class axis already is
    Z_n when ``C == n``; otherwise no fit is made and None is returned for it).
    """
    n = _check_grid(logits)
    if labels.shape != (n, n) or train_mask.shape != (n, n):
        raise UserError(f"labels and train mask must be [{n}, {n}], got "
                        f"{tuple(labels.shape)} and {tuple(train_mask.shape)}")
    keys = _check_keys(keys, n)
    x = logits.double()
    d, coef = _coefficients(x, keys)  # [2K, n^2], [2K, C]
    comp = (d.T @ coef).reshape(x.shape)  # [n, n, C]
    restricted = x.mean(dim=(0, 1), keepdim=True) + comp
    mask = train_mask.bool()
    losses = ProgressLosses(
        full_loss=cross_entropy(x, labels),
        restricted_loss=cross_entropy(restricted, labels),
        train_loss=cross_entropy(x[mask], labels[mask]),
        excluded_loss=cross_entropy((x - comp)[mask], labels[mask]),
    )
    if fit_classes is None and x.shape[2] == n:
        fit = _fit(coef, x, keys)
    elif fit_classes is not None:
        fit = _fit(coef[:, fit_classes], x[:, :, fit_classes], keys)
    else:
        fit = None
    return fit, losses


def logit_fourier_norm_map(logits: torch.Tensor) -> torch.Tensor:
    """The 2-D Fourier norm map of the logits: ``sqrt(sum_c (B L_c B^T)^2)`` as ``[n, n]``
    (rows: a-basis, columns: b-basis, in :mod:`workbench.fourier.basis` row order). A grokked
    addition model lights up the ``cos/sin k x cos/sin k`` cells of its key frequencies."""
    _check_grid(logits)
    return transform_2d(logits.float()).pow(2).sum(dim=2).sqrt().double()
