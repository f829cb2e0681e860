"""Fixtures for the Fourier tests: a training-free modular model built from cos/sin features."""

from __future__ import annotations

import math

import pytest
import torch


def fourier_model_state(p: int, keys: list[int], *, d_model: int = 32, d_mlp: int = 96,
                        scale: float = 8.0, operation: str = "add") -> dict[str, torch.Tensor]:
    """A 1-layer model computing ``sum_k |cos(w_k(a-b)/2)| cos(w_k(a+b-c))`` without training.

    Attention is uniform (zero queries/keys) and the values sum the three positions, so the
    residual stream holds ``E[a] + E[b]`` with ``E[x] = (cos w x, sin w x)`` per key frequency.
    Neuron ``j`` of frequency ``k`` is ``ReLU(cos(w a + phi_j) + cos(w b + phi_j))``; its output
    weights ``cos(w c + 2 phi_j)`` average (over evenly spread phases) to ``cos(w (a + b - c))``.
    With ``operation="mul"`` every nonzero token x sits at its discrete log (``w = 2 pi k /
    (p - 1)``), so the same circuit multiplies; token 0 embeds as zero.
    """
    from workbench.fourier.multiplicative import discrete_log_table
    n_keys = len(keys)
    assert 4 * n_keys <= d_model and d_mlp % n_keys == 0
    per_key = d_mlp // n_keys
    if operation == "mul":
        n = p - 1
        x = discrete_log_table(p)[1].double()  # position of each token on Z_{p-1}
        live = torch.arange(p) != 0
    else:
        n, x, live = p, torch.arange(p, dtype=torch.float64), torch.ones(p, dtype=torch.bool)
    w_e = torch.zeros(p + 1, d_model, dtype=torch.float64)
    w_in = torch.zeros(d_mlp, d_model, dtype=torch.float64)
    w_out = torch.zeros(d_model, d_mlp, dtype=torch.float64)
    w_u = torch.zeros(p, d_model, dtype=torch.float64)
    for i, k in enumerate(keys):
        w = 2 * math.pi * k / n
        e_cos, e_sin, o_cos, o_sin = 4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3
        w_e[:p, e_cos], w_e[:p, e_sin] = live * torch.cos(w * x), live * torch.sin(w * x)
        phi = 2 * math.pi * torch.arange(per_key, dtype=torch.float64) / per_key
        rows = slice(i * per_key, (i + 1) * per_key)
        w_in[rows, e_cos], w_in[rows, e_sin] = torch.cos(phi), -torch.sin(phi)
        w_out[o_cos, rows], w_out[o_sin, rows] = torch.cos(2 * phi), -torch.sin(2 * phi)
        w_u[:, o_cos] = live * scale * torch.cos(w * x)
        w_u[:, o_sin] = live * scale * torch.sin(w * x)
    hd = d_model
    zeros = torch.zeros(hd, d_model, dtype=torch.float64)
    state = {
        "tok_embed.weight": w_e, "pos.weight": torch.zeros(3, d_model, dtype=torch.float64),
        "layers.0.attn.q.weight": zeros.clone(), "layers.0.attn.q.bias": torch.zeros(hd),
        "layers.0.attn.k.weight": zeros.clone(), "layers.0.attn.k.bias": torch.zeros(hd),
        # uniform attention over 3 positions: 3 * identity values sum the positions
        "layers.0.attn.v.weight": 3 * torch.eye(d_model, dtype=torch.float64),
        "layers.0.attn.v.bias": torch.zeros(hd),
        "layers.0.attn.o.weight": torch.eye(d_model, dtype=torch.float64),
        "layers.0.attn.o.bias": torch.zeros(d_model),
        "layers.0.mlp.fc_in.weight": w_in, "layers.0.mlp.fc_in.bias": torch.zeros(d_mlp),
        "layers.0.mlp.fc_out.weight": w_out, "layers.0.mlp.fc_out.bias": torch.zeros(d_model),
        "head.weight": w_u,
    }
    return {k: v.float() for k, v in state.items()}


@pytest.fixture
def constructed_model():
    return fourier_model_state
