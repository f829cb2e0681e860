"""Program/model equivalence: run the exported program and the discrete model on every input.

``agreement`` is the fraction of inputs on which every output position matches (all positions,
labelled or not). It must be 1.0: the exported program *is* the discrete model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from programs.data import ProgramShape
from programs.decompile import decompile, load_program
from programs.discrete import DiscreteProgram, run_discrete


@dataclass(frozen=True)
class VerifyResult:
    agreement: float
    n_inputs: int
    mismatches: list[dict] = field(default_factory=list)  # up to 5 examples of disagreement


def decode_inputs(x: torch.Tensor, shape: ProgramShape) -> list[list[str]]:
    return [[shape.input_vocab[i] for i in row] for row in x.tolist()]


def verify(prog: DiscreteProgram, x: torch.Tensor, source: str | None = None,
           batch_size: int = 4096) -> VerifyResult:
    """Agreement of the exported program (``source``, default: decompiled now) with ``prog``
    on token ids ``x`` ``[n, pos]``."""
    run = load_program(source if source is not None else decompile(prog))["run"]
    labels = prog.shape.output_vocab
    agree, mismatches = 0, []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        model_out = run_discrete(prog, chunk).predictions.tolist()
        for tokens, pred in zip(decode_inputs(chunk, prog.shape), model_out):
            expected = [labels[i] for i in pred]
            got = run(tokens)
            if got == expected:
                agree += 1
            elif len(mismatches) < 5:
                mismatches.append({"input": tokens, "model": expected, "program": got})
    return VerifyResult(agreement=agree / max(len(x), 1), n_inputs=len(x),
                        mismatches=mismatches)
