"""Encoding aligned task data for Transformer Programs, with the checks on user data.

The shape of a program (vocabularies, context length, categorical width ``k``) is fixed by the
data and travels with the weights as :class:`ProgramShape`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.tasks import TaskData, check_functional
from workbench.errors import UserError

IGNORE = -100  # label index of unlabelled positions (cross-entropy ignore_index)


@dataclass(frozen=True, kw_only=True)
class ProgramShape:
    """Data-dependent dimensions of a program: vocabularies, ``n_ctx`` and width ``k``."""

    input_vocab: tuple[str, ...]
    output_vocab: tuple[str, ...]
    n_ctx: int
    width: int  # cardinality k of every categorical variable
    # padding token: its positions are never attention keys (the usual attention mask). None
    # for data without padding, and for programs saved before padding was masked.
    pad: str | None = None

    @property
    def pad_id(self) -> int | None:
        return None if self.pad is None else self.input_vocab.index(self.pad)

    def to_dict(self) -> dict:
        return {"input_vocab": list(self.input_vocab), "output_vocab": list(self.output_vocab),
                "n_ctx": self.n_ctx, "width": self.width, "pad": self.pad}

    @classmethod
    def from_dict(cls, data: dict) -> "ProgramShape":
        return cls(input_vocab=tuple(data["input_vocab"]),
                   output_vocab=tuple(data["output_vocab"]), n_ctx=int(data["n_ctx"]),
                   width=int(data["width"]), pad=data.get("pad"))


def shape_for(data: TaskData, var_width: int | None, mask_padding: bool = True) -> ProgramShape:
    """Validate ``data`` for a program and derive its shape; bad data raises UserError."""
    if data.layout != "aligned":
        raise UserError(f"task {data.name!r} has layout {data.layout!r}; Transformer Programs "
                        "need the aligned layout (one output per input position)")
    if not data.train:
        raise UserError(f"task {data.name!r} has no training examples")
    check_functional(tuple(data.train) + tuple(data.test))
    n_ctx = max(len(e.input) for e in (*data.train, *data.test))
    if not data.output_vocab:
        raise UserError(f"task {data.name!r} has no output labels")
    width = var_width if var_width is not None else max(len(data.input_vocab), n_ctx)
    if len(data.input_vocab) > width:
        raise UserError(f"input vocabulary of {len(data.input_vocab)} tokens is too large for "
                        f"var_width={width}; raise var_width to at least "
                        f"{len(data.input_vocab)}")
    if n_ctx > width:
        raise UserError(f"sequence length {n_ctx} is too large for var_width={width}; raise "
                        f"var_width to at least {n_ctx}")
    pad = data.pad_token if mask_padding and data.pad_token in data.input_vocab else None
    return ProgramShape(input_vocab=tuple(data.input_vocab), output_vocab=tuple(data.output_vocab),
                        n_ctx=n_ctx, width=width, pad=pad)


def encode(examples, shape: ProgramShape, pad: str | None = None) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """Token ids ``[n, n_ctx]`` and label ids ``[n, n_ctx]`` (IGNORE where unlabelled).

    Shorter inputs are padded with ``pad`` (unlabelled); unknown tokens raise UserError.
    """
    tok = {t: i for i, t in enumerate(shape.input_vocab)}
    lab = {t: i for i, t in enumerate(shape.output_vocab)}
    pad = pad if pad is not None else shape.input_vocab[-1]
    xs, ys = [], []
    for e in examples:
        if len(e.input) > shape.n_ctx:
            raise UserError(f"input of length {len(e.input)} exceeds n_ctx={shape.n_ctx}")
        fill = shape.n_ctx - len(e.input)
        try:
            xs.append([tok[t] for t in e.input] + [tok[pad]] * fill)
        except KeyError as exc:
            raise UserError(f"token {exc.args[0]!r} is not in the input vocabulary") from None
        try:
            ys.append([IGNORE if t is None else lab[t] for t in e.output] + [IGNORE] * fill)
        except KeyError as exc:
            raise UserError(f"label {exc.args[0]!r} is not in the output vocabulary") from None
    if not xs:
        return (torch.zeros(0, shape.n_ctx, dtype=torch.long),
                torch.zeros(0, shape.n_ctx, dtype=torch.long))
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)
