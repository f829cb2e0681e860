"""Small aligned tasks built by hand for the programs tests (no dependency on generators)."""

from __future__ import annotations

import itertools
import random

from training.tasks import Example, TaskData


def fixed_reverse(length: int = 4, vocab: str = "abcd", seed: int = 0,
                  frac_train: float = 0.8) -> TaskData:
    """BOS + every sequence of ``length`` letters; label at position i is the reversed token."""
    bodies = list(itertools.product(vocab, repeat=length))
    random.Random(seed).shuffle(bodies)
    examples = [Example(input=("BOS", *body), output=(None, *reversed(body)))
                for body in bodies]
    cut = int(frac_train * len(examples))
    return TaskData(name="fixed-reverse", train=tuple(examples[:cut]),
                    test=tuple(examples[cut:]), input_vocab=("BOS", *vocab, "PAD"),
                    output_vocab=tuple(vocab), layout="aligned", pad_token="PAD")
