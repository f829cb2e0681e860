"""The activation-function table: every forward and analysis that applies a model's MLP
activation looks its ``act_fn`` name up here (TransformerLens and Hugging Face spellings).

``gelu_new`` and its Hugging Face aliases are GELU's tanh approximation, which
``F.gelu(approximate="tanh")`` computes with the same formula as GPT-2's and TransformerLens's
native models, so a forward built from this table reproduces theirs.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from workbench.errors import check_choice

Activation = Callable[[torch.Tensor], torch.Tensor]


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Activation] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str | None, what: str = "act_fn") -> Activation:
    """The function for ``name`` (case-insensitive); a UserError names an unknown one."""
    key = (name or "").lower()
    if key not in ACTIVATIONS:
        check_choice(name, what, sorted(ACTIVATIONS))  # raises, naming the value as given
    return ACTIVATIONS[key]


def supported(name: str | None) -> bool:
    return (name or "").lower() in ACTIVATIONS


__all__ = ["ACTIVATIONS", "Activation", "activation", "supported"]
