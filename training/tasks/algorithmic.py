"""The RASP / Transformer Programs sequence tasks: reverse, hist, double-hist, sort, most-freq.

Definitions follow Weiss et al. (2021, RASP) and Friedman et al. (2023, Transformer Programs),
vocabulary 8 and maximum length 8 including BOS. Layout ``aligned``: the input is
``BOS, x_1 .. x_L, PAD ..`` (always ``max_len`` tokens, ``1 <= L < max_len``), the output has
one label per input position and ``None`` (no loss) at BOS and at padding. Tokens are the
letters "a", "b", ... (``vocab_size`` of them, in that order); count labels are digit strings.

Paper set-up: the paper's "vocabulary 8" counts the special tokens, so its tasks use 5 letters
with an end marker (reverse, sort: ``vocab_size=5, eos=True``, input ``BOS x_1 .. x_L EOS``) or 6
letters (hist, double-hist, most-freq: ``vocab_size=6``), and most-freq labels the positions past
the ranked tokens with ``"-"`` (``label_rest=True``) instead of leaving them unlabelled.
``programs.config.PAPER_TASK_PARAMS`` holds these settings.

Sampling (``sampling="even"``): ``n_samples`` *distinct* sequences, spread evenly over the
lengths ``1 .. max_len-1`` (a length with fewer possible sequences than its share contributes all
of them and the rest is shared among the longer lengths); if the whole input space is smaller
than ``n_samples``, every sequence is used. ``sampling="paper"`` is the original's generator:
draws with a uniform length and uniform letters, duplicates dropped, until ``n_samples`` distinct
sequences are found or ``5 n_samples`` draws are spent (the paper's reverse and sort: 14,124
distinct sequences, ~72% of them of the longest length, where "even" gives every sequence).
The paper splits 16k/2k/2k into train/validation/test; TaskData has no validation split, so the
validation part is folded into test (``frac_train = 0.8``: 16k/4k).
"""

from __future__ import annotations

import abc
import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from training.tasks.base import Example, Label, Task, TaskData, Token
from training.tasks.common import (BOS, EOS, PAD, check_fraction, check_int,
                                   check_seed, letters, shuffle_split)
from training.tasks.registry import register
from workbench.errors import UserError, check_choice

_RANGE_SAMPLE_MAX = 2 ** 62  # random.sample(range(N)) needs N <= sys.maxsize
LETTER_SAMPLINGS = ("even", "paper")
REST_LABEL = "-"  # most-freq with label_rest: a position past the ranked distinct tokens


def aligned_example(body: Sequence[Token], labels: Sequence[Label], max_len: int,
                    eos: bool = False) -> Example:
    """``BOS + body [+ EOS] + PAD..`` with ``None`` labels at BOS, EOS and the padding."""
    end = (EOS,) if eos else ()
    assert len(body) == len(labels) and len(body) + len(end) < max_len, (body, labels)
    pad = max_len - 1 - len(body) - len(end)
    return Example(input=(BOS, *body, *end) + (PAD,) * pad,
                   output=(None, *labels) + (None,) * (len(end) + pad))


def length_quotas(capacities: Sequence[int], n: int) -> list[int]:
    """Split ``n`` evenly over buckets holding at most ``capacities[i]`` items each, giving a
    full bucket's unused share to the others (water filling, smallest buckets first)."""
    quotas = [0] * len(capacities)
    remaining = n
    order = sorted(range(len(capacities)), key=lambda i: capacities[i])
    for rank, i in enumerate(order):
        left = len(order) - rank
        quotas[i] = min(capacities[i], -(-remaining // left))
        remaining -= quotas[i]
    return quotas


def sample_sequences(rng: random.Random, vocab: Sequence[Token], lengths: Sequence[int],
                     n: int) -> list[tuple[Token, ...]]:
    """``n`` distinct sequences over ``vocab`` (fewer if there are fewer), evenly over lengths."""
    v = len(vocab)
    out: list[tuple[Token, ...]] = []
    for length, quota in zip(lengths, length_quotas([v ** L for L in lengths], n)):
        capacity = v ** length
        if capacity <= _RANGE_SAMPLE_MAX:
            codes = rng.sample(range(capacity), quota)
        else:  # collisions are astronomically rare, but keep the guarantee
            seen: dict[int, None] = {}
            while len(seen) < quota:
                seen.setdefault(rng.randrange(capacity))
            codes = list(seen)
        for code in codes:
            digits = []
            for _ in range(length):
                code, d = divmod(code, v)
                digits.append(vocab[d])
            out.append(tuple(reversed(digits)))
    return out


def sample_distinct(rng: random.Random, draw, n: int,
                    max_attempts: int) -> list[tuple[Token, ...]]:
    """Up to ``n`` distinct results of ``draw(rng)``, giving up after ``max_attempts`` draws
    (for samplers whose input space may be smaller than ``n``)."""
    seen: dict[tuple[Token, ...], None] = {}  # ordered, unlike a set
    for _ in range(max_attempts):
        if len(seen) == n:
            break
        seen.setdefault(tuple(draw(rng)))
    return list(seen)


@dataclass(frozen=True, kw_only=True)
class AlignedTask(Task):
    """Shared parameters, generation and split of the aligned (BOS-first) sequence tasks."""

    max_len: int = 8  # including BOS
    n_samples: int = 20000
    frac_train: float = 0.8

    def __post_init__(self) -> None:
        check_int(self.max_len, "max_len", minimum=2)
        check_int(self.n_samples, "n_samples", minimum=2)
        check_fraction(self.frac_train, "frac_train")
        check_seed(self.seed)

    @abc.abstractmethod
    def tokens(self) -> tuple[Token, ...]:
        """The non-special input tokens, in id order (after BOS)."""

    @abc.abstractmethod
    def labels(self, body: Sequence[Token]) -> tuple[Label, ...]:
        """One label per body token (BOS and padding excluded)."""

    @abc.abstractmethod
    def output_vocab(self) -> tuple[Token, ...]:
        """Every label this task can produce, in class order."""

    @abc.abstractmethod
    def sample_bodies(self, rng: random.Random) -> list[tuple[Token, ...]]:
        """Up to ``n_samples`` distinct unpadded sequences (no BOS)."""

    def has_eos(self) -> bool:
        """Whether inputs end with the EOS marker (see :class:`EndMarkedTask`)."""
        return False

    def example(self, body: Sequence[Token]) -> Example:
        """The aligned example for one unpadded sequence (no BOS)."""
        return aligned_example(tuple(body), self.labels(body), self.max_len, self.has_eos())

    def generate(self) -> TaskData:
        rng = random.Random(self.seed)
        examples = [self.example(b) for b in self.sample_bodies(rng)]
        train, test = shuffle_split(examples, self.frac_train, rng)
        end = (EOS,) if self.has_eos() else ()
        return TaskData(name=self.name, train=train, test=test,
                        input_vocab=(BOS, *self.tokens(), *end, PAD),
                        output_vocab=self.output_vocab(), layout="aligned", pad_token=PAD)


@dataclass(frozen=True, kw_only=True)
class LetterSequenceTask(AlignedTask):
    """Tasks on uniformly sampled sequences of the letters "a".. (``vocab_size`` of them)."""

    vocab_size: int = 8
    sampling: str = "even"  # or "paper" (see the module docstring)

    def __post_init__(self) -> None:
        check_int(self.vocab_size, "vocab_size", minimum=2, maximum=26)
        check_choice(self.sampling, "sampling", LETTER_SAMPLINGS)
        super().__post_init__()

    def tokens(self) -> tuple[Token, ...]:
        return letters(self.vocab_size)

    def sample_bodies(self, rng: random.Random) -> list[tuple[Token, ...]]:
        longest = self.max_len - (2 if self.has_eos() else 1)
        tokens = self.tokens()
        if self.sampling == "paper":
            def draw(r: random.Random) -> list[Token]:
                return [r.choice(tokens) for _ in range(r.randint(1, longest))]
            return sample_distinct(rng, draw, self.n_samples, max_attempts=5 * self.n_samples)
        return sample_sequences(rng, tokens, range(1, longest + 1), self.n_samples)


@dataclass(frozen=True, kw_only=True)
class EndMarkedTask(LetterSequenceTask):
    """A letter task whose input may end with ``EOS`` (the paper's reverse and sort)."""

    eos: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eos and self.max_len < 3:
            raise UserError(f"max_len must be at least 3 with eos=true, got {self.max_len!r}")

    def has_eos(self) -> bool:
        return self.eos


@register
@dataclass(frozen=True, kw_only=True)
class Reverse(EndMarkedTask):
    name = "reverse"
    description = "output the sequence reversed (RASP / Transformer Programs)"

    def labels(self, body):
        return tuple(reversed(body))

    def output_vocab(self):
        return self.tokens()


@register
@dataclass(frozen=True, kw_only=True)
class Hist(LetterSequenceTask):
    name = "hist"
    description = "at each position, how often its token occurs in the sequence"

    def labels(self, body):
        counts = Counter(body)
        return tuple(str(counts[t]) for t in body)

    def output_vocab(self):
        return tuple(str(i) for i in range(1, self.max_len))


@register
@dataclass(frozen=True, kw_only=True)
class DoubleHist(LetterSequenceTask):
    name = "double-hist"
    description = "at each position, how many distinct tokens share its token's count"

    def labels(self, body):
        counts = Counter(body)
        same = Counter(counts.values())  # count -> number of distinct tokens with that count
        return tuple(str(same[counts[t]]) for t in body)

    def output_vocab(self):
        return tuple(str(i) for i in range(1, min(self.vocab_size, self.max_len - 1) + 1))


@register
@dataclass(frozen=True, kw_only=True)
class Sort(EndMarkedTask):
    name = "sort"
    description = "output the tokens sorted ascending (vocabulary order)"

    def labels(self, body):
        rank = {t: i for i, t in enumerate(self.tokens())}
        return tuple(sorted(body, key=rank.__getitem__))  # sorted() is stable

    def output_vocab(self):
        return self.tokens()


@register
@dataclass(frozen=True, kw_only=True)
class MostFreq(LetterSequenceTask):
    name = "most-freq"
    description = ("the distinct tokens by decreasing frequency (ties: first occurrence); "
                   "positions past the number of distinct tokens have no label (label_rest: "
                   "'-')")

    label_rest: bool = False  # the paper labels them (with its BOS token)

    def labels(self, body):
        counts = Counter(body)
        first = {}
        for i, t in enumerate(body):
            first.setdefault(t, i)
        ranked = sorted(first, key=lambda t: (-counts[t], first[t]))
        rest = REST_LABEL if self.label_rest else None
        return tuple(ranked) + (rest,) * (len(body) - len(ranked))

    def output_vocab(self):
        return self.tokens() + ((REST_LABEL,) if self.label_rest else ())
