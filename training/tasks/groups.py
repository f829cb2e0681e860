"""Permutation groups (S_n, A_n) for the group-composition task.

A permutation of ``{0, .., n-1}`` is a tuple ``g`` with ``g[i]`` the image of ``i`` (one-line
notation); its token is the digits joined, e.g. ``"01234"`` for the identity of S5.

Composition convention: ``compose(g, h) = g∘h`` applies ``h`` first, then ``g``:
``(g∘h)[i] = g[h[i]]``. This is the usual right-to-left convention, so that a representation
``ρ`` satisfies ``ρ(g∘h) = ρ(g) ρ(h)`` (Chughtai et al. 2023 write logits as
``tr(ρ(a) ρ(b) ρ(c⁻¹))`` for ``c = a∘b``).

Group elements are listed in a fixed order: the lexicographic order of their one-line tuples
(identity first); ``A_n`` keeps the even permutations of ``S_n`` in the same order.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from workbench.errors import UserError
from workbench.permutations import Permutation, compose, inverse, sign

MIN_DEGREE = {"S": 2, "A": 3}
MAX_DEGREE = 6  # S7 would give 25 million composition pairs


def to_token(g: Permutation) -> str:
    """One-line notation as a string, e.g. ``(1, 0, 2) -> "102"`` (degree at most 10)."""
    assert len(g) <= 10, g
    return "".join(str(i) for i in g)


def from_token(token: str) -> Permutation:
    """Inverse of :func:`to_token`; raises UserError if ``token`` is not a permutation."""
    g = tuple(int(c) for c in token if c.isdigit())
    if len(g) != len(token) or sorted(g) != list(range(len(g))):
        raise UserError(f"not a permutation in one-line notation: {token!r}")
    return g


@dataclass(frozen=True)
class PermutationGroup:
    """A permutation group with its elements in a fixed order and index-level tables."""

    name: str
    degree: int
    elements: tuple[Permutation, ...]
    _index: dict[Permutation, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {g: i for i, g in enumerate(self.elements)})

    @property
    def order(self) -> int:
        return len(self.elements)

    def index(self, g: Permutation) -> int:
        return self._index[g]

    def tokens(self) -> tuple[str, ...]:
        return tuple(to_token(g) for g in self.elements)

    def multiply(self, i: int, j: int) -> int:
        """Index of ``elements[i]∘elements[j]``."""
        return self._index[compose(self.elements[i], self.elements[j])]

    def multiplication_table(self) -> np.ndarray:
        """``table[i, j]`` = index of ``elements[i]∘elements[j]``. # [order, order]"""
        return np.array([[self.multiply(i, j) for j in range(self.order)]
                         for i in range(self.order)], dtype=np.int64)

    def inverse_indices(self) -> np.ndarray:
        """``inv[i]`` = index of the inverse of ``elements[i]``. # [order]"""
        return np.array([self._index[inverse(g)] for g in self.elements], dtype=np.int64)

    def signs(self) -> np.ndarray:
        """Sign (+1/-1) of each element. # [order]"""
        return np.array([sign(g) for g in self.elements], dtype=np.int64)

    def conjugacy_classes(self) -> list[tuple[int, ...]]:
        """Element indices grouped into conjugacy classes (within this group), in order of
        their first element."""
        assigned: dict[int, int] = {}
        classes: list[list[int]] = []
        for i, g in enumerate(self.elements):
            if i in assigned:
                continue
            members = sorted({self._index[compose(compose(x, g), inverse(x))]
                              for x in self.elements})
            for m in members:
                assigned[m] = len(classes)
            classes.append(members)
        return [tuple(c) for c in classes]


def symmetric_group(n: int) -> PermutationGroup:
    return PermutationGroup(f"S{n}", n, tuple(itertools.permutations(range(n))))


def alternating_group(n: int) -> PermutationGroup:
    elements = tuple(g for g in itertools.permutations(range(n)) if sign(g) == 1)
    return PermutationGroup(f"A{n}", n, elements)


def group_names() -> list[str]:
    return ([f"S{n}" for n in range(MIN_DEGREE["S"], MAX_DEGREE + 1)]
            + [f"A{n}" for n in range(MIN_DEGREE["A"], MAX_DEGREE + 1)])


def get_group(name: str) -> PermutationGroup:
    """``"S5"`` -> the symmetric group S5, ``"A5"`` -> the alternating group; see
    :func:`group_names` for the supported ones."""
    match = re.fullmatch(r"([SA])(\d+)", name.strip().upper()) if isinstance(name, str) else None
    if match is None or f"{match[1]}{int(match[2])}" not in group_names():
        raise UserError(f"group must be one of {', '.join(group_names())}, got {name!r}")
    kind, n = match[1], int(match[2])
    return symmetric_group(n) if kind == "S" else alternating_group(n)
