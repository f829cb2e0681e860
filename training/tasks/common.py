"""Shared helpers for task modules: parameter validation and the deterministic train/test split.

Every task validates its own fields with these so that error messages read the same way
("p must be prime, got 12") and every split follows one rule: shuffle with the task's RNG, the
first ``int(frac_train * n)`` items are train (the convention of the grokking reference run,
which gives 3,830 / 8,939 for p = 113, frac_train = 0.3).
"""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

from workbench.errors import UserError

T = TypeVar("T")

BOS = "BOS"
PAD = "PAD"
EOS = "EOS"  # end-of-sequence marker of the tasks that take ``eos=True``


def check_int(value, label: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]``, else a UserError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{label} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        if minimum == 1:
            raise UserError(f"{label} must be positive, got {value!r}")
        raise UserError(f"{label} must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise UserError(f"{label} must be at most {maximum}, got {value!r}")
    return value


def check_fraction(value, label: str) -> float:
    """``value`` strictly between 0 and 1, else a UserError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{label} must be a number, got {value!r}")
    if not 0.0 < value < 1.0:
        raise UserError(f"{label} must be strictly between 0 and 1, got {value!r}")
    return float(value)


def check_seed(value) -> int:
    return check_int(value, "seed")


def n_train_for(n: int, frac_train: float) -> int:
    """Number of training items for ``n`` items; raises if either split would be empty."""
    n_train = int(frac_train * n)
    if n_train < 1 or n_train >= n:
        raise UserError(f"frac_train={frac_train!r} leaves an empty "
                        f"{'train' if n_train < 1 else 'test'} split for {n} examples")
    return n_train


def shuffle_split(items: Sequence[T], frac_train: float,
                  rng: random.Random) -> tuple[tuple[T, ...], tuple[T, ...]]:
    """Shuffle a copy of ``items`` with ``rng``; the first ``int(frac_train * n)`` are train."""
    items = list(items)
    rng.shuffle(items)
    n_train = n_train_for(len(items), frac_train)
    return tuple(items[:n_train]), tuple(items[n_train:])


def letters(count: int) -> tuple[str, ...]:
    """The first ``count`` lowercase letters, the token strings of the algorithmic tasks."""
    assert 0 <= count <= 26, count
    return tuple(chr(ord("a") + i) for i in range(count))
