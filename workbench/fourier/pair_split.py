"""The train/test split of the pair tasks (modular arithmetic, group composition) as the
trainer draws it, rebuilt for the Fourier analyses from a run's task parameters.

The core may not import ``training``, so :func:`modular_train_mask` mirrors
``training.tasks.common.shuffle_split``; a test checks the two agree.
"""

from __future__ import annotations

import random

import torch


def modular_train_mask(p: int, frac_train: float, seed: int) -> torch.Tensor:
    """The train pairs of the modular tasks: the ``p^2`` pairs in ``(a, b)`` row-major order,
    shuffled with ``random.Random(seed)``; the first ``int(frac_train * p^2)`` are train.

    Mirrors ``training.tasks.common.shuffle_split`` (which the core may not import); a test
    checks the two agree.
    """
    order = list(range(p * p))
    random.Random(seed).shuffle(order)
    mask = torch.zeros(p * p, dtype=torch.bool)  # [p * p]
    mask[order[:int(frac_train * p * p)]] = True
    return mask.reshape(p, p)  # [p, p], rows a, columns b


__all__ = ["modular_train_mask"]
