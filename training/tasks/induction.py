"""In-context copying (induction heads), the Transformer Programs in-context learning task.

The sequence after BOS is letter/number pairs followed by one query letter:
``BOS a 1 c 0 a 3 b 2 a`` (defaults: 4 letters "a".."d", 4 numbers "0".."3", ``max_len = 10``
including BOS, so 4 pairs + the query). The numbers are drawn independently at every
occurrence. At a letter position whose letter occurred before, the label is the number that
followed its *most recent* previous occurrence (above: the last "a" is labelled "3"); every other
position (BOS, numbers, first occurrences) is ``None``, i.e. carries no loss. The query letter is
drawn from the letters already seen, so every example has at least one label. The label
at ``i`` depends only on tokens up to ``i`` (``causal``); the paper solves it with 2 layers x 1
categorical head, no MLPs.

The paper's variant (``fixed_pairs=True, label_unseen=True, query_rate=0.5``): every letter keeps
one number within a sequence; a letter's first occurrence is labelled ``"?"`` (nothing to copy
yet) instead of carrying no label; half of the sequences end with a query letter drawn from all
letters, the other half start with a number instead (``BOS 2 a 1 c 0 a 1 b 3``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.tasks.algorithmic import AlignedTask, sample_distinct
from training.tasks.base import Label, Token
from training.tasks.common import check_int, letters
from training.tasks.registry import register
from workbench.errors import UserError

UNSEEN = "?"  # label_unseen: a letter's first occurrence (nothing to copy yet)


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
    fixed_pairs: bool = False  # each letter keeps one number within a sequence (the paper)
    label_unseen: bool = False  # label first occurrences "?" (the paper) instead of None
    query_rate: float = 1.0  # chance of ending with a query letter (else: leading number)

    def __post_init__(self) -> None:
        check_int(self.n_letters, "n_letters", minimum=1, maximum=26)
        check_int(self.n_numbers, "n_numbers", minimum=1, maximum=10)
        if isinstance(self.query_rate, bool) or not isinstance(self.query_rate, (int, float)) \
                or not 0.0 <= self.query_rate <= 1.0:
            raise UserError(f"query_rate must be between 0 and 1, got {self.query_rate!r}")
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
        return self.number_tokens() + ((UNSEEN,) if self.label_unseen else ())

    def labels(self, body) -> tuple[Label, ...]:
        letter_set = set(self.letter_tokens())
        unseen = UNSEEN if self.label_unseen else None
        follower: dict[Token, Token] = {}  # letter -> number after its latest occurrence
        out: list[Label] = []
        for i, token in enumerate(body):
            if token not in letter_set:
                out.append(None)
                continue
            # a letter seen only as the last token has no follower yet: still nothing to copy
            out.append(follower.get(token, unseen))
            if i + 1 < len(body):
                follower[token] = body[i + 1]
        return tuple(out)

    def _draw(self, rng: random.Random) -> list[Token]:
        n_pairs = (self.max_len - 2) // 2
        letters_, numbers = self.letter_tokens(), self.number_tokens()
        fixed = {c: rng.choice(numbers) for c in letters_} if self.fixed_pairs else None
        body: list[Token] = []
        for _ in range(n_pairs):
            c = rng.choice(letters_)
            body += [c, fixed[c] if fixed else rng.choice(numbers)]
        if self.query_rate < 1.0 and rng.random() >= self.query_rate:  # default: stream unchanged
            return [rng.choice(numbers)] + body  # the leading-number form: no query letter
        # a query drawn from all letters may be unseen; that only has a label with label_unseen
        pool = letters_ if self.label_unseen else sorted(set(body[0::2]))
        return body + [rng.choice(pool)]

    def sample_bodies(self, rng: random.Random) -> list[tuple[Token, ...]]:
        return sample_distinct(rng, self._draw, self.n_samples, max_attempts=20 * self.n_samples)
