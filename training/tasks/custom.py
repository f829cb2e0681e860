"""User tasks from JSON Lines files: one ``{"input": [...], "output": [...]}`` object a line.

Tokens may be strings or integers (stored as strings). ``null`` in an output means "no loss at
this position" and is only allowed in the aligned layout. Layout ``"auto"`` is ``aligned`` when
every output has its input's length, else ``seq2seq``. Blank lines are skipped; every error names
the 1-based line and the reason.

Splitting keeps train and test disjoint by input: examples are grouped by input (an exact
duplicate line is kept once), the groups are shuffled with ``seed`` and the first
``int(frac_train * n_groups)`` go to train. Vocabularies are sorted (integers numerically, before
other strings); seq2seq inputs may contain output tokens (the decoder is fed ``output[:-1]``), so
its input vocab holds both, then the separator. Specials are "SEP"/"PAD", or "<SEP>"/"<PAD>"...
when the data already uses those strings.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable, Sequence

from training.tasks.base import Example, Label, TaskData, Token
from training.tasks.common import check_fraction, check_seed, n_train_for
from workbench.errors import UserError, check_choice

LAYOUTS = ("auto", "aligned", "seq2seq")


def _token(value, where: str, *, allow_null: bool) -> Label:
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UserError(f"{where} must be a string or an integer, got {json.dumps(value)}")
    return str(value)


def read_jsonl_examples(path: str | Path) -> tuple[tuple[Example, ...], tuple[int, ...]]:
    """The examples of a JSONL file and their 1-based line numbers, validated line by line.

    Output ``null`` labels are kept as ``None``; layout checks are :func:`load_jsonl_task`'s.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file not found: {str(path)!r}")
    examples, lines = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path.name}: line {number}: invalid JSON: {exc.msg} "
                                f"(column {exc.colno})") from None
            if not isinstance(record, dict):
                raise UserError(f"{path.name}: line {number}: expected an object with 'input' "
                                f"and 'output', got {type(record).__name__}")
            fields = {}
            for key in ("input", "output"):
                if key not in record:
                    raise UserError(f"{path.name}: line {number}: missing key {key!r}")
                value = record[key]
                if not isinstance(value, list):
                    raise UserError(f"{path.name}: line {number}: {key!r} must be a list, "
                                    f"got {type(value).__name__}")
                if not value:
                    raise UserError(f"{path.name}: line {number}: {key!r} is an empty list")
                fields[key] = tuple(
                    _token(v, f"{path.name}: line {number}: {key}[{i}]",
                           allow_null=key == "output") for i, v in enumerate(value))
            examples.append(Example(input=fields["input"], output=fields["output"]))
            lines.append(number)
    if not examples:
        raise UserError(f"{path.name}: no examples (the file is empty)")
    return tuple(examples), tuple(lines)


def check_functional(examples: Sequence[Example], lines: Sequence[int] | None = None) -> None:
    """Raise UserError if one input appears with two different outputs.

    ``lines`` are the examples' line numbers for the message; without them the message uses
    1-based example positions.
    """
    where = "lines" if lines is not None else "examples"
    numbers = list(lines) if lines is not None else list(range(1, len(examples) + 1))
    assert len(numbers) == len(examples)
    first: dict[tuple[Token, ...], tuple[tuple[Label, ...], int]] = {}
    for example, number in zip(examples, numbers):
        seen = first.setdefault(example.input, (example.output, number))
        if seen[0] != example.output:
            raise UserError(f"outputs are not a function of the inputs: input "
                            f"{list(example.input)} at {where} {seen[1]} and {number}")


def _sort_key(token: str):
    try:
        return (0, int(token), token)
    except ValueError:
        return (1, 0, token)


def sorted_vocab(tokens: Iterable[Token]) -> tuple[Token, ...]:
    """Distinct tokens, integers in numeric order first, then other strings."""
    return tuple(sorted(set(tokens), key=_sort_key))


def _special(base: str, taken: set[str]) -> str:
    name = base
    while name in taken:
        name = f"<{name}>"
    return name


def load_jsonl_task(path: str | Path, *, frac_train: float = 0.8, seed: int = 0,
                    layout: str = "auto", require_functional: bool = False) -> TaskData:
    """A TaskData from a JSONL file (see the module docstring for format, layout and split)."""
    check_fraction(frac_train, "frac_train")
    check_seed(seed)
    check_choice(layout, "layout", LAYOUTS)
    examples, lines = read_jsonl_examples(path)
    name = Path(path).stem
    if require_functional:
        check_functional(examples, lines)
    same_length = all(len(e.input) == len(e.output) for e in examples)
    if layout == "auto":
        layout = "aligned" if same_length else "seq2seq"
    for example, number in zip(examples, lines):
        if layout == "aligned" and len(example.input) != len(example.output):
            raise UserError(f"{Path(path).name}: line {number}: aligned layout needs as many "
                            f"outputs as inputs, got {len(example.output)} for "
                            f"{len(example.input)}")
        if layout == "seq2seq" and None in example.output:
            raise UserError(f"{Path(path).name}: line {number}: null labels are only allowed "
                            "in the aligned layout")
        if all(label is None for label in example.output):
            raise UserError(f"{Path(path).name}: line {number}: every output label is null")

    groups: dict[tuple[Token, ...], dict[Example, None]] = {}
    for example in examples:
        groups.setdefault(example.input, {}).setdefault(example)
    keys = list(groups)
    if len(keys) < 2:
        raise UserError(f"{Path(path).name}: need at least 2 distinct inputs to split into "
                        f"train and test, got {len(keys)}")
    random.Random(seed).shuffle(keys)
    n_train = n_train_for(len(keys), frac_train)
    train = tuple(e for key in keys[:n_train] for e in groups[key])
    test = tuple(e for key in keys[n_train:] for e in groups[key])

    in_tokens = {t for e in examples for t in e.input}
    out_tokens = {t for e in examples for t in e.output if t is not None}
    taken = in_tokens | out_tokens
    pad = _special("PAD", taken)
    output_vocab = sorted_vocab(out_tokens)
    if layout == "aligned":
        input_vocab = sorted_vocab(in_tokens) + (pad,)
        sep = None
    else:
        sep = _special("SEP", taken | {pad})
        input_vocab = sorted_vocab(in_tokens | out_tokens) + (sep, pad)
    return TaskData(name=name, train=train, test=test, input_vocab=input_vocab,
                    output_vocab=output_vocab, layout=layout, sep_token=sep, pad_token=pad)
