"""Inspecting a trained Transformer Program for the browser page and the notebook widget.

- :func:`train_request` checks a training request with the CLI's own rules (preset, ``--set``
  settings, task parameters) and returns its resolved run config (and the equivalent
  ``workbench programs train`` argv), so nothing is launched for an invalid form.
- :func:`tokenize` reads a user's input string against a run's input vocabulary (unknown tokens
  and over-long inputs are a :class:`UserError` naming them).
- :func:`trace_program` evaluates the discrete program (:func:`programs.discrete.run_discrete`,
  the same evaluator accuracy and verification use) on one input and returns a JSON-able
  :class:`ProgramTrace`: per layer, the value of every variable written at each position and,
  per attention head, which key positions each query selected.
- :func:`unembedding` is the unembedding as a table of logit rows per (variable, value).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import torch

from programs.config import PAPER_PRESETS, PRESETS
from programs.decompile import analyse
from programs.discrete import (CatHead, DiscreteProgram, NumHead, live_keys, rank_matrix,
                               run_discrete, select)
from programs.data import ProgramShape
from training.tasks.common import BOS, EOS, PAD
from workbench.errors import UserError
from workbench.settings import parse_settings, split_prefixed

__all__ = ["TASKS", "TrainRequest", "example_text", "parse_settings", "tokenize",
           "trace_program", "train_request", "unembedding"]

TASKS = tuple(PAPER_PRESETS)  # the registered tasks a program can be trained on from the app


# -- training requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRequest:
    argv: list[str]  # the equivalent ``workbench`` command line (the app launches by run id)
    config: dict  # the resolved program settings
    task_params: dict  # the resolved task parameters
    run_config: object = None  # the whole ProgramRunConfig, for ``programs.api.prepare_run``


def train_request(task: str, preset_name: str, settings: dict[str, str], *,
                  seed: str | int | None = None, name: str | None = None) -> TrainRequest:
    """Validate a training request (UserError naming the bad value) and build its argv."""
    from programs.api import build_run_config

    if task not in TASKS:
        raise UserError(f"unknown program task {task!r}; tasks: {', '.join(TASKS)}")
    if preset_name not in PRESETS:
        raise UserError(f"unknown preset {preset_name!r}; presets: {', '.join(PRESETS)}")
    program, task_params = split_prefixed(settings, "task.")
    if seed not in (None, ""):
        try:
            seed = int(str(seed).strip())
        except ValueError:
            raise UserError(f"seed must be an integer, got {seed!r}") from None
    config = build_run_config(task, preset_name=preset_name, overrides=program,
                              seed=None if seed in (None, "") else seed,
                              task_params=task_params)
    cfg, task_params = config.program, config.task_params
    argv = ["programs", "train", task, "--preset", preset_name]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    if seed not in (None, ""):
        argv += ["--seed", str(seed)]
    if name:
        argv += ["--name", name]
    return TrainRequest(argv=argv + ["--json"], config=cfg.to_dict(), task_params=task_params,
                        run_config=config)


# -- inputs ------------------------------------------------------------------------------------
def tokenize(text: str, shape: ProgramShape, *, pad: bool = True) -> list[str]:
    """Tokens of ``text`` (separated by spaces or commas) for a program of ``shape``.

    ``BOS`` is prepended when the vocabulary has one and the input does not start with it (and
    ``EOS`` appended, likewise, when the vocabulary has an end marker the input lacks); with
    ``pad`` the input is padded with ``PAD`` to the trained length (inputs were padded in
    training). Unknown tokens raise a UserError that names them and lists the vocabulary.
    """
    tokens = [t for t in re.split(r"[\s,]+", text or "") if t]
    vocab = shape.input_vocab
    if not tokens or tokens == [BOS]:
        raise UserError("type at least one input token, separated by spaces; the vocabulary "
                        f"is {' '.join(vocab)}")
    if BOS in vocab and tokens[0] != BOS:
        tokens = [BOS] + tokens
    if EOS in vocab and EOS not in tokens:  # tasks with an end marker (the paper's reverse)
        tokens = tokens + [EOS]
    unknown = [t for t in tokens if t not in vocab]
    if unknown:
        bad = ", ".join(repr(t) for t in dict.fromkeys(unknown))
        raise UserError(f"unknown token{'s' if len(set(unknown)) > 1 else ''} {bad}; the "
                        f"vocabulary is {' '.join(vocab)}")
    if len(tokens) > shape.n_ctx:
        raise UserError(f"input has {len(tokens)} tokens (with BOS); this program takes at "
                        f"most {shape.n_ctx}")
    if pad and PAD in vocab:
        tokens += [PAD] * (shape.n_ctx - len(tokens))
    return tokens


def example_text(program: DiscreteProgram, x: torch.Tensor) -> str:
    """The first row of encoded inputs ``x`` as a user would type it (no BOS, no padding)."""
    if not len(x):
        return ""
    vocab = program.shape.input_vocab
    return " ".join(vocab[i] for i in x[0].tolist() if vocab[i] not in (BOS, PAD, EOS))


# -- traces ------------------------------------------------------------------------------------
@dataclass
class VariableTrace:
    name: str
    kind: str  # "categorical" | "numerical"
    source: str  # what wrote it, e.g. "categorical head 0 (query tokens, key positions, ...)"
    values: list  # one per position: token strings for ``tokens``, ints otherwise
    live: bool  # the exported program computes it (dead code is pruned)


@dataclass
class HeadTrace:
    name: str
    kind: str  # "categorical" | "numerical"
    query: str
    key: str
    value: str
    selected: list[list[int]]  # [query][key]: 1 attended, 0 not (cat: one key; num: all matches)
    chosen: list[int | None]  # categorical: the key position per query; numerical: None
    default: list[bool]  # categorical: nothing matched, so BOS (position 0) was taken
    live: bool


@dataclass
class StepTrace:
    title: str  # "embeddings", "layer 0", ...
    variables: list[VariableTrace] = field(default_factory=list)
    heads: list[HeadTrace] = field(default_factory=list)


@dataclass
class ProgramTrace:
    tokens: list[str]  # the input as run (BOS first, padded)
    n_typed: int  # tokens before padding
    predictions: list[str]
    steps: list[StepTrace]  # embeddings, then one per layer

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProgramTrace":
        steps = [StepTrace(title=s["title"],
                           variables=[VariableTrace(**v) for v in s["variables"]],
                           heads=[HeadTrace(**h) for h in s["heads"]]) for s in data["steps"]]
        return cls(tokens=list(data["tokens"]), n_typed=int(data["n_typed"]),
                   predictions=list(data["predictions"]), steps=steps)

    def variable(self, name: str) -> VariableTrace:
        for step in self.steps:
            for v in step.variables:
                if v.name == name:
                    return v
        raise KeyError(name)


def _reads(prog: DiscreteProgram, module) -> str:
    cat, num = prog.cat_vars, prog.num_vars
    if isinstance(module, CatHead):
        return f"query {cat[module.query]}, key {cat[module.key]}, value {cat[module.value]}"
    if isinstance(module, NumHead):
        return f"query {cat[module.query]}, key {cat[module.key]}, value {num[module.value]}"
    names = num if module.numerical else cat
    return f"reads {names[module.inputs[0]]}, {names[module.inputs[1]]}"


def _kind(module) -> str:
    if isinstance(module, CatHead):
        return f"categorical head {module.index}"
    if isinstance(module, NumHead):
        return f"numerical head {module.index}"
    return f"{'numerical' if module.numerical else 'categorical'} MLP {module.index}"


def trace_program(prog: DiscreteProgram, tokens: list[str]) -> ProgramTrace:
    """Run the discrete program on ``tokens`` (from :func:`tokenize`) and record every step."""
    shape = prog.shape
    ids = torch.tensor([[shape.input_vocab.index(t) for t in tokens]], dtype=torch.long)
    tr = run_discrete(prog, ids)
    an = analyse(prog)
    cat, num = tr.cat[0], tr.num[0]  # [pos, n_cat], [pos, n_num]
    n = len(tokens)

    def cat_values(v: int) -> list:
        labels = an.cat_labels[v]
        return [labels.get(x, x) for x in cat[:, v].tolist()]

    embed = StepTrace(title="embeddings", variables=[
        VariableTrace(name=prog.cat_vars[0], kind="categorical", source="input",
                      values=cat_values(0), live=True),
        VariableTrace(name=prog.cat_vars[1], kind="categorical", source="input",
                      values=cat_values(1), live=True),
        VariableTrace(name=prog.num_vars[0], kind="numerical", source="input",
                      values=num[:, 0].tolist(), live=True)])
    steps = [embed] + [StepTrace(title=f"layer {i}") for i in range(prog.n_layers)]
    ranks = rank_matrix(n)
    key_live = live_keys(prog, ids)
    for module in prog.modules_in_order():
        step = steps[module.layer + 1]
        live = module.name in an.live
        source = f"{_kind(module)}: {_reads(prog, module)}"
        if isinstance(module, NumHead):
            step.variables.append(VariableTrace(name=module.name, kind="numerical",
                                                source=source, live=live,
                                                values=num[:, module.out].tolist()))
        else:
            step.variables.append(VariableTrace(name=module.name, kind="categorical",
                                                source=source, live=live,
                                                values=cat_values(module.out)))
        if isinstance(module, (CatHead, NumHead)):
            pred = torch.tensor(module.predicate, dtype=torch.long)
            chosen, match = select(cat[None, :, module.query], cat[None, :, module.key], pred,
                                   prog.causal, ranks, key_live)
            match = match[0]  # [query, key]
            value_names = prog.cat_vars if isinstance(module, CatHead) else prog.num_vars
            if isinstance(module, CatHead):
                picked = chosen[0].tolist()
                sel = [[int(j == picked[i]) for j in range(n)] for i in range(n)]
                default = (~match.any(-1)).tolist()
            else:
                picked, sel, default = [None] * n, match.long().tolist(), [False] * n
            step.heads.append(HeadTrace(
                name=module.name, kind="categorical" if isinstance(module, CatHead)
                else "numerical", query=prog.cat_vars[module.query],
                key=prog.cat_vars[module.key], value=value_names[module.value],
                selected=sel, chosen=picked, default=default, live=live))
    labels = shape.output_vocab
    predictions = [labels[i] for i in tr.predictions[0].tolist()]
    n_typed = n
    while n_typed > 1 and tokens[n_typed - 1] == PAD:
        n_typed -= 1
    return ProgramTrace(tokens=list(tokens), n_typed=n_typed, predictions=predictions,
                        steps=steps)


# -- unembedding -------------------------------------------------------------------------------
@dataclass
class UnembeddingTable:
    labels: list[str]  # output labels (columns)
    rows: list[tuple[str, str, list[float]]]  # (variable, value, logit row)
    bias: list[float]


def unembedding(prog: DiscreteProgram, *, informative_only: bool = True) -> UnembeddingTable:
    """Logit rows per (categorical variable, reachable value) and per numerical variable (its
    row is multiplied by the value). ``informative_only`` drops variables whose rows are the same
    for every value they can take (and all-zero numerical rows): they change no prediction."""
    an = analyse(prog)
    rows: list[tuple[str, str, list[float]]] = []
    for v, name in enumerate(prog.cat_vars):
        dom = an.cat_domain[v]
        if informative_only and (v in an.const_cat or
                                 len({tuple(prog.unembed_cat[v][x]) for x in dom}) <= 1):
            continue
        labels = an.cat_labels[v]
        rows += [(name, str(labels.get(x, x)), prog.unembed_cat[v][x].tolist()) for x in dom]
    for v, name in enumerate(prog.num_vars):
        if informative_only and not prog.unembed_num[v].any():
            continue
        rows.append((name, "× value", prog.unembed_num[v].tolist()))
    return UnembeddingTable(labels=list(prog.shape.output_vocab), rows=rows,
                            bias=prog.unembed_bias.tolist())
