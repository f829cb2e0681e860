"""Task data → integer tensors for a standard transformer, in the aligned or seq2seq layout.

- aligned: ``x = input ids``, ``y[i] = class of output[i]`` (``IGNORE`` where the label is None).
- seq2seq: ``x = input + [SEP] + output[:-1]`` and the loss at the positions that predict each
  output token, so ``[a, b, =]`` predicts ``c`` at the ``=`` position (the grokking layout).
Variable-length examples are right-padded with the task's PAD token (labels ``IGNORE``); with
causal attention padding on the right never changes the earlier positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.tasks.base import Example, TaskData
from workbench.errors import UserError

IGNORE = -100


@dataclass(frozen=True)
class EncodedTask:
    """Tensors for training and evaluation plus the vocabularies that decode them."""

    train_x: torch.Tensor  # [n_train, seq] long
    train_y: torch.Tensor  # [n_train, seq] long, IGNORE where no loss
    test_x: torch.Tensor  # [n_test, seq]
    test_y: torch.Tensor  # [n_test, seq]
    input_vocab: tuple[str, ...]
    output_vocab: tuple[str, ...]
    layout: str

    @property
    def seq_len(self) -> int:
        return self.train_x.shape[1]

    def label_positions(self) -> torch.Tensor:
        """Positions that carry a label in any example (the positions the loss reads)."""
        has = (self.train_y != IGNORE).any(0) | (self.test_y != IGNORE).any(0)
        return has.nonzero().flatten()

    def vocab_json(self) -> dict:
        return {"input_vocab": list(self.input_vocab), "output_vocab": list(self.output_vocab),
                "layout": self.layout}


def choose_layout(data: TaskData, requested: str, *, causal_task: bool,
                  causal_model: bool) -> str:
    """``auto``: aligned when the model can see what each label depends on, else seq2seq."""
    if requested not in ("auto", "aligned", "seq2seq"):
        raise UserError(f"layout must be auto, aligned or seq2seq, got {requested!r}")
    if requested == "seq2seq" and not causal_model:
        raise UserError("the seq2seq layout needs a causal model (attention_dir=causal): a "
                        "bidirectional model would see the answers it is asked to predict")
    if requested != "auto":
        return requested
    if data.layout == "aligned" and (causal_task or not causal_model):
        return "aligned"
    return "seq2seq"


def encode(data: TaskData, layout: str = "auto", *, causal_task: bool = False,
           causal_model: bool = True) -> EncodedTask:
    """Encode ``data`` (see module docstring); raises ``UserError`` for unusable data."""
    layout = choose_layout(data, layout, causal_task=causal_task, causal_model=causal_model)
    if not data.train or not data.test:
        raise UserError(f"task {data.name!r} has an empty train or test split "
                        f"({len(data.train)} train, {len(data.test)} test)")
    in_vocab = list(data.input_vocab)
    out_vocab = list(data.output_vocab)
    sep = data.sep_token
    if layout == "seq2seq":
        if sep is None:
            sep = "<sep>"
        if sep not in in_vocab:
            in_vocab.append(sep)
        for tok in out_vocab:  # outputs are fed back in as inputs (teacher forcing)
            if tok not in in_vocab:
                in_vocab.append(tok)
    rows = [_row(ex, layout, sep) for ex in data.train + data.test]
    width = max(len(r[0]) for r in rows)
    pad = data.pad_token
    if any(len(r[0]) != width for r in rows):
        pad = pad or "<pad>"
        if pad not in in_vocab:
            in_vocab.append(pad)
    in_ids = {t: i for i, t in enumerate(in_vocab)}
    out_ids = {t: i for i, t in enumerate(out_vocab)}
    xs, ys = [], []
    for tokens, labels in rows:
        try:
            x = [in_ids[t] for t in tokens]
        except KeyError as exc:
            raise UserError(f"token {exc.args[0]!r} is not in the input vocabulary") from None
        y = []
        for label in labels:
            if label is None:
                y.append(IGNORE)
            elif label in out_ids:
                y.append(out_ids[label])
            else:
                raise UserError(f"label {label!r} is not in the output vocabulary")
        fill = width - len(x)
        xs.append(x + [in_ids[pad]] * fill if fill else x)
        ys.append(y + [IGNORE] * fill)
    x_all = torch.tensor(xs, dtype=torch.long)
    y_all = torch.tensor(ys, dtype=torch.long)
    n = len(data.train)
    return EncodedTask(x_all[:n], y_all[:n], x_all[n:], y_all[n:], tuple(in_vocab),
                       tuple(out_vocab), layout)


def _row(ex: Example, layout: str, sep: str | None) -> tuple[list[str], list[str | None]]:
    if layout == "aligned":
        if len(ex.input) != len(ex.output):
            raise UserError(f"aligned layout needs outputs as long as inputs, got input "
                            f"{list(ex.input)} and output {list(ex.output)}")
        return list(ex.input), list(ex.output)
    outputs = [t for t in ex.output if t is not None]  # aligned data: the labelled positions
    if not outputs:
        raise UserError(f"example with input {list(ex.input)} has an empty output")
    tokens = list(ex.input) + [sep] + outputs[:-1]
    labels: list[str | None] = [None] * len(ex.input) + outputs
    return tokens, labels
