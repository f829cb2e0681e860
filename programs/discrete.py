"""The discrete (argmax) Transformer Program and its batched evaluator.

A :class:`DiscreteProgram` is what a trained model becomes after every relaxation is set to its
argmax: each module reads fixed variables, each predicate maps a query value to one key value, each
MLP is a lookup table (computed once by evaluating the trained MLP on every input pair), and the
unembedding is a table of float64 logit rows. This object *is* the discrete model: its evaluator
(:func:`run_discrete`) is what accuracy is measured on, and the decompiler and the compiler both
read it, so program, model and compiled transformer share one semantics.

Variables are indices: categorical ones into ``cat_vars`` (values ``0..k-1``; ``tokens`` holds
input-vocabulary ids, ``positions`` holds the position), numerical ones into ``num_vars`` (values
are integers: ``ones`` is 1, a numerical head's output is the sum of its value variable over
the matching keys -- with ``ones``, a count ``0..n_ctx``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from programs import runtime
from programs.data import ProgramShape


@dataclass(frozen=True)
class CatHead:
    name: str
    layer: int
    index: int
    query: int  # categorical variable indices
    key: int
    value: int
    predicate: tuple[int, ...]  # query value -> the key value it matches
    out: int


@dataclass(frozen=True)
class NumHead:
    name: str
    layer: int
    index: int
    query: int
    key: int
    value: int  # numerical variable index (``ones`` = 0: the head counts its matches)
    predicate: tuple[int, ...]
    out: int  # numerical variable index


@dataclass(frozen=True)
class MLPTable:
    name: str
    layer: int
    index: int
    # inputs are numerical variables (read saturated at n_ctx: the table is 0..n_ctx square)
    # or categorical (0..k-1)
    numerical: bool
    inputs: tuple[int, int]
    table: tuple[tuple[int, ...], ...]  # table[a][b] = output value
    out: int  # categorical variable index


@dataclass(frozen=True, eq=False)
class DiscreteProgram:
    shape: ProgramShape
    causal: bool
    n_layers: int
    cat_vars: tuple[str, ...]
    num_vars: tuple[str, ...]
    cat_heads: tuple[CatHead, ...]
    num_heads: tuple[NumHead, ...]
    mlps: tuple[MLPTable, ...]
    unembed_cat: np.ndarray  # [n_cat_vars, k, d_out] float64
    unembed_num: np.ndarray  # [n_num_vars, d_out] float64
    unembed_bias: np.ndarray  # [d_out] float64

    def modules_in_order(self):
        """Every module in evaluation order: per layer, the heads, then the MLPs."""
        for layer in range(self.n_layers):
            for head in self.cat_heads:
                if head.layer == layer:
                    yield head
            for head in self.num_heads:
                if head.layer == layer:
                    yield head
            for mlp in self.mlps:
                if mlp.layer == layer:
                    yield mlp


@dataclass
class DiscreteTrace:
    """Everything the discrete model computed on a batch (for verification and the UI)."""

    cat: torch.Tensor  # [batch, pos, n_cat_vars] values
    num: torch.Tensor  # [batch, pos, n_num_vars] values
    selected: dict[str, torch.Tensor] = field(default_factory=dict)  # head -> [batch, pos]
    logits: torch.Tensor | None = None  # [batch, pos, d_out] float64
    predictions: torch.Tensor | None = None  # [batch, pos] output ids


def rank_matrix(n: int) -> torch.Tensor:
    """``[n, n]`` integer ranks of key j for query i (the runtime's :func:`rank`)."""
    return torch.tensor([[runtime.rank(i, j, n) for j in range(n)] for i in range(n)],
                        dtype=torch.long)


def select(query: torch.Tensor, key: torch.Tensor, predicate: torch.Tensor, causal: bool,
           ranks: torch.Tensor, live: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard selection: ``(chosen [batch, pos], match [batch, query, key])``.

    Same rule as :func:`programs.runtime.select`: smallest rank among matches, else position 0;
    keys where ``live`` [batch, pos] is false (padding) never match.
    """
    n = query.shape[1]
    target = predicate[query]  # [batch, pos]
    match = target[:, :, None] == key[:, None, :]  # [batch, query, key]
    if live is not None:
        match = match & live[:, None, :]
    if causal:
        match = match & torch.ones(n, n, dtype=torch.bool).tril()
    big = 4 * n + 1
    scored = torch.where(match, ranks, torch.full_like(ranks, big))  # [batch, query, key]
    best, chosen = scored.min(dim=-1)
    chosen = torch.where(best == big, torch.zeros_like(chosen), chosen)
    return chosen, match


def live_keys(prog: DiscreteProgram, tokens: torch.Tensor) -> torch.Tensor | None:
    """``[batch, pos]`` false at padding positions (never attention keys); None: no padding."""
    pad = prog.shape.pad_id
    return None if pad is None else tokens != pad


def run_discrete(prog: DiscreteProgram, tokens: torch.Tensor) -> DiscreteTrace:
    """Evaluate the discrete program on token ids ``[batch, pos]`` (pos <= n_ctx)."""
    b, n = tokens.shape
    assert n <= prog.shape.n_ctx, (n, prog.shape.n_ctx)
    cat = torch.zeros(b, n, len(prog.cat_vars), dtype=torch.long)  # [batch, pos, n_cat]
    num = torch.zeros(b, n, len(prog.num_vars), dtype=torch.long)  # [batch, pos, n_num]
    cat[:, :, 0] = tokens
    cat[:, :, 1] = torch.arange(n)
    num[:, :, 0] = 1
    ranks = rank_matrix(n)
    live = live_keys(prog, tokens)
    trace = DiscreteTrace(cat=cat, num=num)
    for module in prog.modules_in_order():
        if isinstance(module, CatHead):
            pred = torch.tensor(module.predicate, dtype=torch.long)
            chosen, _ = select(cat[:, :, module.query], cat[:, :, module.key], pred,
                               prog.causal, ranks, live)
            cat[:, :, module.out] = cat[:, :, module.value].gather(1, chosen)
            trace.selected[module.name] = chosen
        elif isinstance(module, NumHead):
            pred = torch.tensor(module.predicate, dtype=torch.long)
            _, match = select(cat[:, :, module.query], cat[:, :, module.key], pred,
                              prog.causal, ranks, live)
            values = num[:, :, module.value]  # [batch, key]
            num[:, :, module.out] = (match.long() * values[:, None, :]).sum(-1)
        else:
            table = torch.tensor(module.table, dtype=torch.long)
            src = num if module.numerical else cat
            a, c = src[:, :, module.inputs[0]], src[:, :, module.inputs[1]]
            if module.numerical:  # sums of values can pass n_ctx: the table saturates there
                a, c = a.clamp(max=prog.shape.n_ctx), c.clamp(max=prog.shape.n_ctx)
            cat[:, :, module.out] = table[a, c]
    # Summation order and precision match programs.runtime.unembed exactly (float64, in
    # variable order, categorical variables first), so argmax ties break the same way.
    total = torch.from_numpy(prog.unembed_bias).expand(b, n, -1).clone()  # [batch, pos, d_out]
    for v in range(len(prog.cat_vars)):
        total = total + torch.from_numpy(prog.unembed_cat[v])[cat[:, :, v]]
    for v in range(len(prog.num_vars)):
        total = total + num[:, :, v, None].double() * torch.from_numpy(prog.unembed_num[v])
    trace.logits = total
    trace.predictions = total.argmax(-1)  # first maximum on ties, like max() in the runtime
    return trace
