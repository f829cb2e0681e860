"""Group composition: ``(g, h) -> g∘h`` over all pairs of a permutation group.

Chughtai et al. (2023), "A toy model of universality". Elements are tokens in one-line notation
("01234" is the identity of S5), ``g∘h`` applies ``h`` first (see :mod:`training.tasks.groups`).
Seq2seq layout ``[g, h, =] -> g∘h``; the input vocab lists the group's elements in the fixed
order of :func:`training.tasks.groups.get_group` followed by "=", so token ids equal element
indices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.tasks.base import Example, Task, TaskData
from training.tasks.common import check_fraction, check_seed, shuffle_split
from training.tasks.groups import PermutationGroup, compose, get_group, to_token
from training.tasks.registry import register
from workbench.errors import UserError

SEP = "="


@register
@dataclass(frozen=True, kw_only=True)
class GroupComposition(Task):
    name = "group-composition"
    description = "g∘h for all pairs of a permutation group (S3..S6, A3..A6), h applied first"

    group: str = "S5"
    frac_train: float = 0.4

    def __post_init__(self) -> None:
        if not isinstance(self.group, str):
            raise UserError(f"group must be a string such as 'S5', got {self.group!r}")
        get_group(self.group)  # validates the name
        check_fraction(self.frac_train, "frac_train")
        check_seed(self.seed)

    def permutation_group(self) -> PermutationGroup:
        return get_group(self.group)

    def generate(self) -> TaskData:
        group = self.permutation_group()
        tokens = group.tokens()
        examples = [Example(input=(to_token(g), to_token(h)), output=(to_token(compose(g, h)),))
                    for g in group.elements for h in group.elements]
        train, test = shuffle_split(examples, self.frac_train, random.Random(self.seed))
        return TaskData(name=self.name, train=train, test=test, input_vocab=tokens + (SEP,),
                        output_vocab=tokens, layout="seq2seq", sep_token=SEP)
