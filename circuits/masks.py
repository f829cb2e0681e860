"""Hard-concrete gates (the L0 relaxation) for edge and node masks.

Method: Louizos, Welling & Kingma, "Learning Sparse Neural Networks through L0 Regularization"
(ICLR 2018), with the constants Edge Pruning uses (Bhaskar et al., NeurIPS 2024;
``shared/reference/edge-pruning.md``): stretch limits l = −0.1, r = 1.1, temperature β = 2/3,
ε = 1e-6, log α initialised from N(10, 0.01²) so every gate starts on.

- Sample: ``u ~ U(ε, 1−ε)``, ``s = σ((log u − log(1−u) + log α)/β)``, ``z = clamp(s·(r−l)+l, 0, 1)``.
- Expected L0 (probability a gate is non-zero): ``σ(log α − β·log(−l/r))``.
- Deterministic scores: ``σ(log α/β · 0.8)`` (the score that orders gates for extraction).
"""

from __future__ import annotations

import math

import torch

LEFT, RIGHT, BETA, EPS = -0.1, 1.1, 2.0 / 3.0, 1e-6
INIT_MEAN, INIT_STD = 10.0, 0.01


def init_log_alpha(shape, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """log α ~ N(10, 0.01), a fresh leaf tensor (re-initialised for every search)."""
    t = torch.randn(shape, generator=generator, device=device) * INIT_STD + INIT_MEAN
    return t.requires_grad_(True)


def sample(log_alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One hard-concrete sample per gate, differentiable in ``log_alpha``."""
    u = torch.rand(log_alpha.shape, generator=generator, device=log_alpha.device)
    u = u * (1 - 2 * EPS) + EPS
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / BETA)
    return (s * (RIGHT - LEFT) + LEFT).clamp(0.0, 1.0)


def expected_l0(log_alpha: torch.Tensor) -> torch.Tensor:
    """P(z > 0) per gate (differentiable)."""
    return torch.sigmoid(log_alpha - BETA * math.log(-LEFT / RIGHT))


def deterministic_scores(log_alpha: torch.Tensor) -> torch.Tensor:
    """Soft scores that rank gates for extraction: ``σ(log α / β · 0.8)``."""
    return torch.sigmoid(log_alpha / BETA * 0.8)


def expected_sparsity(log_alpha: torch.Tensor) -> torch.Tensor:
    """``1 − E[Σz≠0] / n``: the expected fraction of gates off."""
    return 1 - expected_l0(log_alpha).mean()
