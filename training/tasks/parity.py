"""Sparse parity: the label is the XOR of ``k`` secret bits out of ``n``.

Barak et al. (2022), Edelman et al. (2023). The secret support is drawn from ``seed`` (the first
draw of ``random.Random(seed)``) and is exposed by :meth:`SparseParity.support` (and stored
with every run as the task fact ``support``) so analyses can compare it with, e.g., the Walsh coefficients of a trained network. Inputs are distinct
uniformly random bit strings (position ``i`` holds bit ``i``), so train and test never share an
input; ``n_train + n_test`` may therefore not exceed ``2**n``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.tasks.base import Example, Task, TaskData
from training.tasks.common import check_int, check_seed
from training.tasks.registry import register
from workbench.errors import UserError

SEP = "="
_RANGE_SAMPLE_MAX_BITS = 62  # random.sample(range(2**n)) needs len(range) <= sys.maxsize


@register
@dataclass(frozen=True, kw_only=True)
class SparseParity(Task):
    name = "sparse-parity"
    description = "parity of k secret bits among n random bits (seq2seq: bits = parity)"

    n: int = 20
    k: int = 3
    n_train: int = 1000
    n_test: int = 1000

    def __post_init__(self) -> None:
        check_int(self.n, "n", minimum=1)
        check_int(self.k, "k", minimum=1)
        if self.k > self.n:
            raise UserError(f"k must be at most n={self.n}, got {self.k!r}")
        check_int(self.n_train, "n_train", minimum=1)
        check_int(self.n_test, "n_test", minimum=1)
        check_seed(self.seed)
        total = self.n_train + self.n_test
        if self.n <= _RANGE_SAMPLE_MAX_BITS and total > 2 ** self.n:
            raise UserError(f"n_train + n_test = {total} exceeds the {2 ** self.n} distinct "
                            f"inputs of n={self.n} bits")

    def _rng_after_support(self) -> tuple[random.Random, tuple[int, ...]]:
        rng = random.Random(self.seed)
        return rng, tuple(sorted(rng.sample(range(self.n), self.k)))

    def support(self) -> tuple[int, ...]:
        """The secret bit positions, sorted (fixed by ``seed``)."""
        return self._rng_after_support()[1]

    def facts(self) -> dict:
        return {"support": list(self.support())}

    def label(self, bits: tuple[str, ...]) -> str:
        """The parity (``"0"``/``"1"``) of the support bits of ``bits``."""
        return str(sum(int(bits[i]) for i in self.support()) % 2)

    def generate(self) -> TaskData:
        rng, support = self._rng_after_support()
        total = self.n_train + self.n_test
        if self.n <= _RANGE_SAMPLE_MAX_BITS:
            values = rng.sample(range(2 ** self.n), total)
        else:
            seen: dict[int, None] = {}  # ordered, unlike a set
            while len(seen) < total:
                seen.setdefault(rng.getrandbits(self.n))
            values = list(seen)
        examples = []
        for x in values:
            bits = tuple(str((x >> i) & 1) for i in range(self.n))
            parity = sum((x >> i) & 1 for i in support) % 2
            examples.append(Example(input=bits, output=(str(parity),)))
        # The draws are already in random order: the first n_train are train.
        return TaskData(name=self.name, train=tuple(examples[:self.n_train]),
                        test=tuple(examples[self.n_train:]), input_vocab=("0", "1", SEP),
                        output_vocab=("0", "1"), layout="seq2seq", sep_token=SEP)
