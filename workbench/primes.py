"""Primality and factorisation of small moduli, for the modular tasks and their analyses."""

from __future__ import annotations


def is_prime(p: int) -> bool:
    """Trial division: the moduli here are small."""
    if p < 2:
        return False
    i = 2
    while i * i <= p:
        if p % i == 0:
            return False
        i += 1
    return True


def prime_factors(m: int) -> list[int]:
    """The distinct prime factors of ``m``, increasing."""
    out, d = [], 2
    while d * d <= m:
        if m % d == 0:
            out.append(d)
            while m % d == 0:
                m //= d
        d += 1
    if m > 1:
        out.append(m)
    return out
