"""Irreducible-representation decomposition over small symmetric groups (S3, S4, S5, ...).

Method (Chughtai et al. 2023, "A toy model of universality"): a network trained on group
composition embeds each element through a few irreducible representations; on S5 the key irreps
are the sign and the 4-d standard representation (~93% of embedding variance). A function on G
(one column of an embedding ``[|G|, d]``) splits into isotypic components with the central
projectors ``P_rho[h, k] = (d_rho / |G|) chi_rho(h k^-1)`` (Serre, "Linear representations of
finite groups", section 2.6), which are orthogonal and sum to the identity; we report each
component's share of the (centred) variance.

Characters of S_n come from the Murnaghan-Nakayama rule on beta-sets (James & Kerber, "The
representation theory of the symmetric group", 2.4): removing a rim hook of length ``r`` moves a
bead from ``b`` to ``b - r``, with sign ``(-1)^(beads strictly between)``.

Key-irrep rule (ours): an irrep is key when it holds at least ``min_share`` of the variance and
at least ``enrichment`` times the share a random embedding would give it (its ``d^2`` dimensions
out of ``|G| - 1`` after centring).

Element order: :func:`symmetric_group` lists permutations of ``range(n)`` in lexicographic order
(``itertools.permutations``); pass your own ``elements`` to match a model's token order.
Composition as in :mod:`workbench.permutations`: ``(p q)(i) = p(q(i))``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from workbench.errors import UserError
from workbench.permutations import Permutation, compose, cycle_type, inverse

Perm = Permutation
MAX_N = 7  # |S7| = 5040: projectors are |G|^2 per irrep

_NAMES = {(3,): "trivial", (2, 1): "standard", (1, 1, 1): "sign",
          (4,): "trivial", (3, 1): "standard", (2, 2): "2d", (2, 1, 1): "standard_sign",
          (1, 1, 1, 1): "sign",
          (5,): "trivial", (4, 1): "standard", (3, 2): "5d", (3, 1, 1): "6d",
          (2, 2, 1): "5d_sign", (2, 1, 1, 1): "standard_sign", (1, 1, 1, 1, 1): "sign"}


def symmetric_group(n: int) -> list[Perm]:
    if not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise UserError(f"symmetric group degree must be in 1..{MAX_N}, got {n!r}")
    return list(itertools.permutations(range(n)))


def partitions(n: int, largest: int | None = None) -> list[tuple[int, ...]]:
    """Partitions of ``n`` in decreasing lexicographic order ((n) first, (1^n) last)."""
    largest = n if largest is None else largest
    if n == 0:
        return [()]
    return [(k,) + rest for k in range(min(n, largest), 0, -1) for rest in partitions(n - k, k)]


@lru_cache(maxsize=None)
def _mn(beta: tuple[int, ...], mu: tuple[int, ...]) -> int:
    if not mu:
        return 1
    r, rest = mu[0], mu[1:]
    beads = set(beta)
    total = 0
    for b in beta:
        if b - r >= 0 and b - r not in beads:
            height = sum(1 for c in beta if b - r < c < b)
            new = tuple(sorted((beads - {b}) | {b - r}, reverse=True))
            total += (-1) ** height * _mn(new, rest)
    return total


def character(shape: Sequence[int], cycles: Sequence[int]) -> int:
    """``chi^shape`` at an element of cycle type ``cycles`` (Murnaghan-Nakayama)."""
    lam = tuple(shape)
    length = len(lam)
    beta = tuple(lam[i] + length - 1 - i for i in range(length))
    return _mn(beta, tuple(cycles))


@dataclass(frozen=True)
class CharacterTable:
    """``table[i, j]`` = character of irrep ``shapes[i]`` on class ``classes[j]``."""

    n: int
    shapes: list[tuple[int, ...]]
    names: list[str]
    classes: list[tuple[int, ...]]
    class_sizes: list[int]
    table: torch.Tensor  # [n_irreps, n_classes] float64

    @property
    def dims(self) -> list[int]:
        ident = self.classes.index((1,) * self.n)
        return [int(x) for x in self.table[:, ident]]


def character_table(n: int) -> CharacterTable:
    group = symmetric_group(n)
    shapes = partitions(n)
    classes = partitions(n)
    counts = {c: 0 for c in classes}
    for g in group:
        counts[cycle_type(g)] += 1
    table = torch.tensor([[character(s, c) for c in classes] for s in shapes],
                         dtype=torch.float64)
    names = [_NAMES.get(s, "[" + ",".join(map(str, s)) + "]") for s in shapes]
    return CharacterTable(n=n, shapes=shapes, names=names, classes=classes,
                          class_sizes=[counts[c] for c in classes], table=table)


def isotypic_projectors(elements: Sequence[Perm], table: CharacterTable) -> torch.Tensor:
    """``[n_irreps, |G|, |G|]`` projectors onto each isotypic component of functions on G."""
    size = len(elements)
    if size != len(set(elements)) or size != sum(table.class_sizes):
        raise UserError(f"elements must list each of the {sum(table.class_sizes)} elements of "
                        f"S{table.n} once, got {size}")
    class_index = {c: j for j, c in enumerate(table.classes)}
    inv = [inverse(g) for g in elements]
    idx = torch.tensor([[class_index[cycle_type(compose(h, ki))] for ki in inv]
                        for h in elements])  # [|G|, |G|] class of h k^-1
    dims = torch.tensor(table.dims, dtype=torch.float64)
    return table.table[:, idx] * (dims / size)[:, None, None]


@dataclass(frozen=True)
class IrrepDecomposition:
    """Variance share of each irrep (``shares`` sums to 1) and the key irreps."""

    names: list[str]
    dims: list[int]
    shares: list[float]
    key_irreps: list[str]

    def to_json(self) -> dict:
        return {"irreps": [{"name": n, "dim": d, "share": s}
                           for n, d, s in zip(self.names, self.dims, self.shares)],
                "key_irreps": self.key_irreps}


def irrep_decomposition(x: torch.Tensor, n: int, *, dim: int = 0,
                        elements: Sequence[Perm] | None = None, center: bool = True,
                        min_share: float = 0.05, enrichment: float = 1.5) -> IrrepDecomposition:
    """Split ``x`` (group axis ``dim`` of size n!) into isotypic components of S_n.

    ``center`` removes the mean over the group first (the trivial component), so shares are of
    the variance. Works for embeddings ``[|G|, d]`` and, with ``dim=2``, for logits over the
    answer axis ``[|G|, |G|, |G|]``.
    """
    table = character_table(n)
    elements = symmetric_group(n) if elements is None else [tuple(e) for e in elements]
    size = len(elements)
    if x.shape[dim] != size:
        raise UserError(f"axis {dim} must have |S{n}| = {size} entries, got {tuple(x.shape)}")
    flat = x.double().movedim(dim, 0).reshape(size, -1)  # [|G|, rest]
    if center:
        flat = flat - flat.mean(dim=0, keepdim=True)
    proj = isotypic_projectors(elements, table)  # [I, |G|, |G|]
    power = torch.stack([(p @ flat).pow(2).sum() for p in proj])  # [I]
    total = float(power.sum())
    shares = (power / total).tolist() if total > 0 else [0.0] * len(power)
    denom = size - 1 if center else size
    key = [name for name, d, s in zip(table.names, table.dims, shares)
           if s >= min_share and s >= enrichment * d * d / denom]
    return IrrepDecomposition(names=table.names, dims=table.dims, shares=shares, key_irreps=key)
