"""The task contract: deterministic example generation, vocabularies, split and metric.

A task produces *aligned examples*: an input token list and an output token list. Two layouts
are derived from them (see :mod:`training.datasets`):

- ``aligned``: one output per input position (``output[i]`` is the label at position ``i``;
  ``None`` means "no loss here"). Used by Transformer Programs and by causal tasks.
- ``seq2seq``: ``input + [SEP] + output[:-1]`` with the loss at the positions that predict each
  output token. Used by a standard causal transformer on non-causal tasks (e.g. modular
  addition ``[a, b, =] -> c``, reverse, sort).

Every task is a frozen dataclass of its parameters, validated in ``__post_init__`` (bad values
raise :class:`workbench.errors.UserError`, a ``ValueError``, naming the value), and generates the
same examples for the same seed; train and test never share an input.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

Token = str
Label = str | None  # None: no loss at this position


@dataclass(frozen=True)
class Example:
    """One input/output pair; ``output`` is aligned with ``input`` for aligned tasks."""

    input: tuple[Token, ...]
    output: tuple[Label, ...]


@dataclass(frozen=True)
class TaskData:
    """A generated task: examples split into train and test, plus vocabularies.

    ``input_vocab`` lists every token that can appear in an input (including specials such as
    BOS/PAD/SEP); ``output_vocab`` lists the labels the model predicts, in class order.
    """

    name: str
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    input_vocab: tuple[Token, ...]
    output_vocab: tuple[Token, ...]
    layout: str  # "aligned" or "seq2seq": the layout a standard transformer should use
    sep_token: Token | None = None  # the separator for the seq2seq layout
    pad_token: Token | None = None


@dataclass(frozen=True, kw_only=True)
class Task(abc.ABC):
    """Base class for task parameter sets. Subclasses set ``name`` and implement ``generate``.

    ``seed`` fixes the data (and, where the task has one, the hidden rule such as the parity set).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Whether output[i] depends only on input[: i + 1] (a causal model can learn it aligned).
    causal: ClassVar[bool] = False
    seed: int = 0

    @abc.abstractmethod
    def generate(self) -> TaskData:
        """All examples for this parameter set, split into train and test."""

    def params(self) -> dict:
        """Every parameter of this task, resolved (defaults included), as JSON values: what a
        run stores, so that its data never depends on the code's defaults of a later day."""
        return {f.name: _json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def facts(self) -> dict:
        """Hidden rules of the generated data that analyses compare a model with (e.g. the
        secret bits of sparse parity), as JSON values; stored with every run."""
        return {}

    @classmethod
    def parameters(cls) -> list[dict]:
        """The task's parameters as ``[{"name", "type", "default"}]`` for ``workbench tasks``."""
        out = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            out.append({"name": f.name, "type": getattr(f.type, "__name__", str(f.type)),
                        "default": default})
        return out


def _json_value(value):
    return [_json_value(v) for v in value] if isinstance(value, (tuple, list)) else value


def token_accuracy(predictions: Sequence[Sequence[Token]], examples: Sequence[Example]) -> float:
    """Fraction of labelled positions predicted correctly (the per-token metric of the papers)."""
    correct = total = 0
    for pred, ex in zip(predictions, examples, strict=True):
        for p, label in zip(pred, ex.output):
            if label is None:
                continue
            total += 1
            correct += int(p == label)
    return correct / max(total, 1)
