"""Modular arithmetic tasks over Z_p: addition, subtraction and multiplication.

The grokking setup of Nanda et al. (2023): every pair ``(a, b)`` in ``Z_p x Z_p`` is one
example ``[a, b] -> [(a op b) mod p]``; seq2seq layout ``[a, b, =] -> c`` with "=" as token id
``p`` (input vocab ``"0" .. str(p-1), "="``). The pairs are shuffled with ``seed`` and the first
``int(frac_train * p**2)`` are train (3,830 of 12,769 for the reference p = 113, 30%).
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass

from training.tasks.base import Example, Task, TaskData
from training.tasks.common import check_fraction, check_int, check_seed, shuffle_split
from workbench.primes import is_prime
from training.tasks.registry import register
from workbench.errors import UserError

SEP = "="


@dataclass(frozen=True, kw_only=True)
class ModularTask(Task):
    """Shared parameters and generation; subclasses define :meth:`answer`."""

    p: int = 113
    frac_train: float = 0.3

    def __post_init__(self) -> None:
        check_int(self.p, "p")
        if not is_prime(self.p):
            raise UserError(f"p must be prime, got {self.p!r}")
        check_fraction(self.frac_train, "frac_train")
        check_seed(self.seed)

    @abc.abstractmethod
    def answer(self, a: int, b: int) -> int:
        """``(a op b) mod p``."""

    def generate(self) -> TaskData:
        p = self.p
        examples = [Example(input=(str(a), str(b)), output=(str(self.answer(a, b)),))
                    for a in range(p) for b in range(p)]
        train, test = shuffle_split(examples, self.frac_train, random.Random(self.seed))
        numbers = tuple(str(i) for i in range(p))
        return TaskData(name=self.name, train=train, test=test, input_vocab=numbers + (SEP,),
                        output_vocab=numbers, layout="seq2seq", sep_token=SEP)


@register
@dataclass(frozen=True, kw_only=True)
class ModularAddition(ModularTask):
    name = "modular-addition"
    description = "(a + b) mod p over all p^2 pairs (grokking, Nanda et al. 2023)"

    def answer(self, a: int, b: int) -> int:
        return (a + b) % self.p


@register
@dataclass(frozen=True, kw_only=True)
class ModularSubtraction(ModularTask):
    name = "modular-subtraction"
    description = "(a - b) mod p over all p^2 pairs"

    def answer(self, a: int, b: int) -> int:
        return (a - b) % self.p


@register
@dataclass(frozen=True, kw_only=True)
class ModularMultiplication(ModularTask):
    name = "modular-multiplication"
    description = "(a * b) mod p over all p^2 pairs (0 included)"

    def answer(self, a: int, b: int) -> int:
        return (a * b) % self.p
