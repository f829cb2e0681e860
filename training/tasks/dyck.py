"""Dyck-1 and Dyck-2 prefix classification (RASP "Dyck-PFT", Transformer Programs).

At every position the label says what the prefix ending there is: ``"T"`` balanced, ``"P"`` a
valid prefix that is not yet balanced (it can still be completed), ``"F"`` an invalid prefix (a
closing bracket that does not match the innermost open one, or closes nothing; it can never be
balanced again, so ``"F"`` is absorbing). Dyck-1 uses "(" ")", Dyck-2 "(" ")" "{" "}". The label
at ``i`` depends only on tokens up to ``i`` (``causal``). Aligned layout, default
``max_len = 16`` including BOS.

Sampling (to keep all three labels frequent; the paper does not pin this down): lengths
``1 .. max_len-1``, weighted towards those with more distinct strings; a third of the draws are
balanced strings (odd lengths fall back to the next mode), a third valid prefixes, a third valid
prefixes with one to three positions replaced by a different bracket. Walks close an open
bracket with a probability drawn per string from [0.4, 0.8], so both shallow strings (many
"T") and deep ones occur. Duplicates are rejected; if the input space is too small for
``n_samples`` the task returns as many distinct sequences as it found. With the defaults the
labels are about 60% P, 32% F, 8% T (dyck-1: only 625 balanced strings of length <= 15 exist)
and 64% P, 21% F, 15% T (dyck-2).

``sampling="paper"`` follows the Transformer Programs set-up instead: every string has
``max_len - 1`` tokens; half are built from ``max_len // 2`` bracket pairs, each either appended
or wrapped around what is there, cut to length; the other half are uniformly random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar, Sequence

from training.tasks.algorithmic import AlignedTask, sample_distinct
from training.tasks.base import Label, Token
from training.tasks.registry import register
from workbench.errors import check_choice

_MAX_MISSES = 50
SAMPLINGS = ("mixed", "paper")
PAIRS = {1: (("(", ")"),), 2: (("(", ")"), ("{", "}"))}


def dyck_labels(body: Sequence[Token], pairs: Sequence[tuple[str, str]]) -> tuple[Label, ...]:
    """``"T"``/``"P"``/``"F"`` for every prefix of ``body`` (see the module docstring)."""
    opener_of = {close: open_ for open_, close in pairs}
    stack: list[str] = []
    failed = False
    out = []
    for token in body:
        if not failed:
            if token in opener_of:
                if stack and stack[-1] == opener_of[token]:
                    stack.pop()
                else:
                    failed = True
            else:
                assert any(token == o for o, _ in pairs), token
                stack.append(token)
        out.append("F" if failed else ("P" if stack else "T"))
    return tuple(out)


def _walk(rng: random.Random, length: int, pairs, balanced: bool,
          p_close: float = 0.5) -> list[str]:
    """A random valid prefix of ``length`` tokens; balanced at the end if ``balanced``.

    ``p_close`` is the chance of closing when a bracket is open: higher values keep the walk
    shallow and return to balance (label "T") more often.
    """
    out: list[str] = []
    stack: list[tuple[str, str]] = []
    for step in range(length):
        remaining = length - step
        must_close = balanced and len(stack) == remaining
        if stack and (must_close or rng.random() < p_close):
            out.append(stack.pop()[1])
        else:
            pair = pairs[0] if len(pairs) == 1 else rng.choice(pairs)
            stack.append(pair)
            out.append(pair[0])
    return out


@dataclass(frozen=True, kw_only=True)
class DyckTask(AlignedTask):
    """Shared generation; subclasses set ``n_types`` (the number of bracket types)."""

    n_types: ClassVar[int] = 1
    causal = True
    max_len: int = 16
    sampling: str = "mixed"  # or "paper" (see the module docstring)

    def __post_init__(self) -> None:
        check_choice(self.sampling, "sampling", SAMPLINGS)
        super().__post_init__()

    def tokens(self) -> tuple[Token, ...]:
        return tuple(t for pair in PAIRS[self.n_types] for t in pair)

    def labels(self, body):
        return dyck_labels(body, PAIRS[self.n_types])

    def output_vocab(self):
        return ("F", "P", "T")

    def _draw(self, rng: random.Random, length: int) -> list[str]:
        pairs = PAIRS[self.n_types]
        mode = rng.randrange(3)
        p_close = rng.uniform(0.4, 0.8)
        if mode == 0 and length % 2 == 0:
            return _walk(rng, length, pairs, balanced=True, p_close=p_close)
        body = _walk(rng, length, pairs, balanced=False, p_close=p_close)
        if mode == 2:
            for i in rng.sample(range(length), min(length, rng.randint(1, 3))):
                body[i] = rng.choice([t for t in self.tokens() if t != body[i]])
        return body

    def _draw_paper(self, rng: random.Random) -> list[str]:
        length = self.max_len - 1
        if rng.random() < 0.5:
            return [rng.choice(self.tokens()) for _ in range(length)]
        pairs = PAIRS[self.n_types]
        body: list[str] = []
        for _ in range(self.max_len // 2):
            open_, close = rng.choice(pairs)
            body = body + [open_, close] if rng.random() < 0.5 else [open_, *body, close]
        return body[:length]

    def sample_bodies(self, rng: random.Random) -> list[tuple[Token, ...]]:
        if self.sampling == "paper":
            return sample_distinct(rng, self._draw_paper, self.n_samples,
                                   max_attempts=20 * self.n_samples)
        # Short lengths hold few distinct strings: a length is drawn in proportion to what it
        # can contribute and retired after _MAX_MISSES duplicates in a row, so that few draws
        # are wasted on duplicates.
        lengths = range(1, self.max_len)
        share = self.n_samples / len(lengths)
        weights = [min(float(len(self.tokens())) ** L, share) for L in lengths]
        misses = [0] * len(lengths)
        seen: dict[tuple[Token, ...], None] = {}  # ordered, unlike a set
        for _ in range(20 * self.n_samples):
            if len(seen) == self.n_samples or not any(weights):
                break
            i = rng.choices(range(len(lengths)), weights)[0]
            body = tuple(self._draw(rng, lengths[i]))
            if body in seen:
                misses[i] += 1
                if misses[i] == _MAX_MISSES:
                    weights[i] = 0.0
            else:
                seen[body] = None
                misses[i] = 0
        return list(seen)


@register
@dataclass(frozen=True, kw_only=True)
class Dyck1(DyckTask):
    name = "dyck-1"
    description = "per prefix: balanced (T), completable (P) or broken (F); brackets ()"
    n_types = 1


@register
@dataclass(frozen=True, kw_only=True)
class Dyck2(DyckTask):
    name = "dyck-2"
    description = "per prefix: balanced (T), completable (P) or broken (F); brackets () {}"
    n_types = 2
