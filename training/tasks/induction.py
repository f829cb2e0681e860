"""In-context copying (induction heads), the Transformer Programs in-context learning task.

The sequence after BOS is letter/number pairs followed by one query letter:
``BOS a 1 c 0 a 3 b 2 a`` (defaults: 4 letters "a".."d", 4 numbers "0".."3", ``max_len = 10``
including BOS, so 4 pairs + the query). The numbers are drawn independently at every
occurrence. At a letter position whose letter occurred before, the label is the number that
followed its *most recent* previous occurrence (above: the last "a" is labelled "3"); every other
position (BOS, numbers, first occurrences) is ``None``, i.e. carries no loss. The query letter is
always drawn from the letters already seen, so every example has at least one label. The label
at ``i`` depends only on tokens up to ``i`` (``causal``); the paper solves it with 2 layers x 1
categorical head, no MLPs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.tasks.algorithmic import AlignedTask, sample_distinct
from training.tasks.base import Label, Token
from training.tasks.common import check_int, letters
from training.tasks.registry import register
from workbench.errors import UserError


@register
@dataclass(frozen=True, kw_only=True)
class Induction(AlignedTask):
    name = "induction"
    description = ("letter/number pairs then a query letter; at a repeated letter predict the "
                   "number after its previous occurrence (causal)")
    causal = True

    n_letters: int = 4
    n_numbers: int = 4
    max_len: int = 10

    def __post_init__(self) -> None:
        check_int(self.n_letters, "n_letters", minimum=1, maximum=26)
        check_int(self.n_numbers, "n_numbers", minimum=1, maximum=10)
        super().__post_init__()
        if self.max_len < 4 or self.max_len % 2:
            raise UserError("max_len must be even and at least 4 (BOS, pairs, query letter), "
                            f"got {self.max_len!r}")

    def letter_tokens(self) -> tuple[Token, ...]:
        return letters(self.n_letters)

    def number_tokens(self) -> tuple[Token, ...]:
        return tuple(str(i) for i in range(self.n_numbers))

    def tokens(self) -> tuple[Token, ...]:
        return self.letter_tokens() + self.number_tokens()

    def output_vocab(self) -> tuple[Token, ...]:
        return self.number_tokens()

    def labels(self, body) -> tuple[Label, ...]:
        letter_set = set(self.letter_tokens())
        follower: dict[Token, Token] = {}  # letter -> number after its latest occurrence
        out: list[Label] = []
        for i, token in enumerate(body):
            out.append(follower.get(token) if token in letter_set else None)
            if token in letter_set and i + 1 < len(body):
                follower[token] = body[i + 1]
        return tuple(out)

    def _draw(self, rng: random.Random) -> list[Token]:
        n_pairs = (self.max_len - 2) // 2
        body: list[Token] = []
        for _ in range(n_pairs):
            body += [rng.choice(self.letter_tokens()), rng.choice(self.number_tokens())]
        seen = sorted(set(body[0::2]))  # sorted: set order is not deterministic
        return body + [rng.choice(seen)]

    def sample_bodies(self, rng: random.Random) -> list[tuple[Token, ...]]:
        return sample_distinct(rng, self._draw, self.n_samples, max_attempts=20 * self.n_samples)
