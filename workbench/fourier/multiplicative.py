"""Reindexing modular operations as addition in a cyclic group, so the Fourier measures apply.

Method: the Fourier measures of Nanda et al. (2023) assume the answer depends on ``a + b`` in
Z_n. Subtraction becomes addition by reading the b axis as ``-b``. Multiplication mod a prime
``p`` becomes addition mod ``p - 1`` through the discrete logarithm (Z_p* is cyclic): with a
primitive root ``g``, ``a = g^i``, ``b = g^j`` gives ``a b = g^(i + j mod p - 1)``, so the
nonzero residues reordered by their logarithm turn multiplication into addition over Z_{p-1}
(0 is outside Z_p* and is left out of the reindexed grid). This is the "multiplication is
addition in the exponent" observation used for modular multiplication by Chughtai et al.
(2023, "A toy model of universality"), where Z_p* is analysed via its irreducible
representations, which are exactly the Fourier modes of Z_{p-1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from workbench.errors import UserError, check_choice
from workbench.primes import is_prime, prime_factors

Operation = Literal["add", "sub", "mul"]
OPERATIONS = ("add", "sub", "mul")


def primitive_root(p: int) -> int:
    """The smallest generator of the multiplicative group Z_p* (``p`` prime)."""
    if not isinstance(p, int) or not is_prime(p):
        raise UserError(f"primitive root needs a prime modulus, got {p!r}")
    if p == 2:
        return 1
    factors = prime_factors(p - 1)
    for g in range(2, p):
        if all(pow(g, (p - 1) // q, p) != 1 for q in factors):
            return g
    raise AssertionError("every prime has a primitive root")


def discrete_log_table(p: int, g: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(powers, logs)``: ``powers[i] = g^i mod p`` for ``i < p - 1``; ``logs[powers[i]] = i``.

    ``logs[0]`` is -1 (0 has no logarithm).
    """
    g = primitive_root(p) if g is None else g
    powers = torch.empty(p - 1, dtype=torch.long)
    x = 1
    for i in range(p - 1):
        powers[i] = x
        x = (x * g) % p
    if len(set(powers.tolist())) != p - 1:
        raise UserError(f"{g!r} is not a primitive root mod {p}")
    logs = torch.full((p,), -1, dtype=torch.long)
    logs[powers] = torch.arange(p - 1)
    return powers, logs


@dataclass(frozen=True)
class CyclicReindex:
    """How the ``(a, b) -> c`` table of an operation maps onto addition in Z_n.

    New grid index ``i`` on the a axis is the original token ``a_index[i]`` (likewise b), and
    answer class ``c_index[(i + j) % n]`` is the original class of ``op(a_index[i], b_index[j])``.
    """

    operation: str
    p: int
    n: int
    a_index: torch.Tensor  # [n] long
    b_index: torch.Tensor  # [n] long
    c_index: torch.Tensor  # [n] long
    generator: int | None = None  # the primitive root, for "mul"

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """Reorder the first two axes (``[p, p, ...]``) onto the reindexed ``[n, n, ...]`` grid."""
        if self.operation == "add":  # identity: skip the copy
            return x
        return x[self.a_index][:, self.b_index]


def apply_operation(operation: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    check_choice(operation, "operation", OPERATIONS)
    if operation == "add":
        return (a + b) % p
    if operation == "sub":
        return (a - b) % p
    assert operation == "mul", operation
    return (a * b) % p


def labels_table(operation: str, p: int) -> torch.Tensor:
    """``[p, p]`` answers ``op(a, b) mod p`` over all pairs."""
    r = torch.arange(p)
    return apply_operation(operation, r[:, None], r[None, :], p)


def cyclic_reindex(operation: str, p: int) -> CyclicReindex:
    """The reindexing that makes ``operation`` mod ``p`` into addition in Z_n."""
    check_choice(operation, "operation", OPERATIONS)
    if not isinstance(p, int) or not is_prime(p) or p < 3:
        raise UserError(f"modulus must be an odd prime, got {p!r}")
    r = torch.arange(p)
    if operation == "add":
        return CyclicReindex(operation, p, p, r, r, r)
    if operation == "sub":
        return CyclicReindex(operation, p, p, r, (-r) % p, r)
    g = primitive_root(p)
    powers, _ = discrete_log_table(p, g)
    return CyclicReindex(operation, p, p - 1, powers, powers, powers, generator=g)
