"""Permutations in one-line notation: composition, inverse, cycles, sign.

The one place these live: the group-composition task (``training``) builds its groups from
them and the irrep analysis (``workbench.fourier``) decomposes over them, so both agree on the
convention. A permutation of ``{0, .., n-1}`` is a tuple ``g`` with ``g[i]`` the image of
``i``; ``compose(g, h) = g∘h`` applies ``h`` first: ``(g∘h)[i] = g[h[i]]``, so that a
representation satisfies ``ρ(g∘h) = ρ(g) ρ(h)``.
"""

from __future__ import annotations

Permutation = tuple[int, ...]


def identity(n: int) -> Permutation:
    return tuple(range(n))


def compose(g: Permutation, h: Permutation) -> Permutation:
    """``g∘h``: apply ``h`` first, then ``g``."""
    assert len(g) == len(h), (g, h)
    return tuple(g[i] for i in h)


def inverse(g: Permutation) -> Permutation:
    inv = [0] * len(g)
    for i, gi in enumerate(g):
        inv[gi] = i
    return tuple(inv)


def cycles(g: Permutation) -> list[tuple[int, ...]]:
    """Disjoint cycles of ``g`` including fixed points, each starting at its smallest point."""
    seen = [False] * len(g)
    out = []
    for start in range(len(g)):
        if seen[start]:
            continue
        cycle = []
        i = start
        while not seen[i]:
            seen[i] = True
            cycle.append(i)
            i = g[i]
        out.append(tuple(cycle))
    return out


def cycle_type(g: Permutation) -> tuple[int, ...]:
    """Cycle lengths in decreasing order: the conjugacy class of ``g`` in ``S_n``."""
    return tuple(sorted((len(c) for c in cycles(g)), reverse=True))


def sign(g: Permutation) -> int:
    """+1 for even permutations, -1 for odd ones."""
    return -1 if (len(g) - len(cycles(g))) % 2 else 1

