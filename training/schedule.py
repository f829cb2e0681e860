"""The learning-rate schedule shared by both trainers: linear warm-up, then cosine to a floor,
WSD (warm-up / stable / decay: constant, then a linear decay over the final fraction of the
steps), or constant."""

from __future__ import annotations

import math


def lr_at(step: int, *, lr: float, steps: int, warmup_steps: int, schedule: str,
          min_lr_ratio: float, decay_frac: float = 0.0) -> float:
    """Learning rate of update ``step`` (0-based) under ``schedule`` ("cosine", "wsd" or
    "constant"); the floor of cosine and WSD is ``min_lr_ratio * lr``."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    floor = lr * min_lr_ratio
    if schedule == "wsd":
        decay_start = steps - int(round(decay_frac * steps))
        if step < decay_start:
            return lr
        progress = (step - decay_start + 1) / max(steps - decay_start, 1)
        return lr + (floor - lr) * progress
    assert schedule == "cosine", schedule
    progress = min((step - warmup_steps) / max(steps - warmup_steps, 1), 1.0)
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
