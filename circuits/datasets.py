"""Clean/corrupted pair datasets for circuit discovery.

Each example is a clean token sequence, a corrupted one of the same length (interchange
ablation reads the corrupted run's activations), the answer position (where the loss is read),
the answer id (a logit index: an output class for in-house models, a token for Hugging Face
models) and optionally a distractor id (for the logit difference).

Sources: a custom JSONL file (``{"clean": [...], "corrupted": [...], "answer": ...,
"distractor": ...}``, token strings); in-house runs (induction: a fresh first half with the same
query letter; modular arithmetic: one operand changed; any other task: another example with a
different answer; a compiled Transformer Program: every labelled position of the program's
inputs, answered by the program itself); IOI (Wang et al. 2022, ABC corruption) and
Greater-Than (Hanna et al. 2023, "01" corruption) prompts for Hugging Face tokenizers, built
piece by piece so clean and corrupted prompts have equal token counts.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from circuits.target import Target
from workbench.errors import UserError

BUILTIN_TASKS = ("induction", "modular", "resample", "ioi", "greater-than")


@dataclass(frozen=True, kw_only=True)
class PairDataset:
    name: str
    clean: torch.Tensor  # [n, seq] long
    corrupted: torch.Tensor  # [n, seq] long
    positions: torch.Tensor  # [n] answer position
    answer: torch.Tensor  # [n] logit index
    distractor: torch.Tensor  # [n] logit index, -1 for none

    def __post_init__(self):
        n = self.clean.shape[0]
        assert self.clean.shape == self.corrupted.shape, (self.clean.shape, self.corrupted.shape)
        assert self.positions.shape == self.answer.shape == self.distractor.shape == (n,)

    def __len__(self) -> int:
        return self.clean.shape[0]

    def subset(self, idx) -> "PairDataset":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return PairDataset(name=self.name, clean=self.clean[idx], corrupted=self.corrupted[idx],
                           positions=self.positions[idx], answer=self.answer[idx],
                           distractor=self.distractor[idx])

    def to(self, device) -> "PairDataset":
        return PairDataset(name=self.name, **{k: getattr(self, k).to(device) for k in
                                              ("clean", "corrupted", "positions", "answer",
                                               "distractor")})


def _stack(name: str, rows: list[tuple[list[int], list[int], int, int, int]],
           pad: int = 0) -> PairDataset:
    if not rows:
        raise UserError(f"task {name!r} produced no examples")
    width = max(len(r[0]) for r in rows)
    fill = lambda seq: seq + [pad] * (width - len(seq))  # noqa: E731  (right padding, causal)
    return PairDataset(name=name,
                       clean=torch.tensor([fill(r[0]) for r in rows], dtype=torch.long),
                       corrupted=torch.tensor([fill(r[1]) for r in rows], dtype=torch.long),
                       positions=torch.tensor([r[2] for r in rows], dtype=torch.long),
                       answer=torch.tensor([r[3] for r in rows], dtype=torch.long),
                       distractor=torch.tensor([r[4] for r in rows], dtype=torch.long))


# -- custom JSONL --------------------------------------------------------------------------
def load_jsonl_pairs(path: str | Path, target: Target, limit: int | None = None) -> PairDataset:
    """Read a pair file; every error names the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"task file {str(path)!r} does not exist")
    rows = []
    name = path.name
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{name}: line {number}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{name}: line {number}: expected a JSON object")
            for key in ("clean", "corrupted", "answer"):
                if key not in obj:
                    raise UserError(f"{name}: line {number}: missing {key!r}")
            clean, corrupted = obj["clean"], obj["corrupted"]
            if not isinstance(clean, list) or not isinstance(corrupted, list) or not clean:
                raise UserError(f"{name}: line {number}: 'clean' and 'corrupted' must be "
                                "non-empty token lists")
            if len(clean) != len(corrupted):
                raise UserError(f"{name}: line {number}: clean has {len(clean)} tokens but "
                                f"corrupted has {len(corrupted)}")
            ids = [_ids(seq, target.input_vocab, name, number, key)
                   for seq, key in ((clean, "clean"), (corrupted, "corrupted"))]
            position = obj.get("position", len(clean) - 1)
            if not isinstance(position, int) or not 0 <= position < len(clean):
                raise UserError(f"{name}: line {number}: position {position!r} is outside "
                                f"the sequence")
            answer = _id(obj["answer"], target.output_vocab, name, number, "answer")
            distractor = obj.get("distractor")
            distractor = -1 if distractor is None else _id(distractor, target.output_vocab,
                                                            name, number, "distractor")
            rows.append((ids[0], ids[1], position, answer, distractor))
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise UserError(f"{name}: no examples")
    return _stack(path.stem, rows)


def _id(token, vocab: dict[str, int], name: str, number: int, field: str) -> int:
    if isinstance(token, str) and token in vocab:
        return vocab[token]
    if isinstance(token, int) and not isinstance(token, bool) and 0 <= token < max(
            len(vocab), 1) and token in vocab.values():
        return token
    raise UserError(f"{name}: line {number}: unknown token {token!r} in {field}")


def _ids(seq, vocab, name, number, field) -> list[int]:
    return [_id(t, vocab, name, number, field) for t in seq]


# -- in-house runs -------------------------------------------------------------------------
def _stored_examples(target: Target):
    """Inputs and labels a run keeps as its ``examples`` artifact (compiled programs: the
    program's inputs and its own outputs), with the target's vocabularies."""
    from types import SimpleNamespace

    from workbench.checkpoint import load_checkpoint
    run = target.run
    path = run.artifact_path("examples")
    if path is None:
        raise UserError(f"run {run.id} keeps no examples to build pairs from")
    tensors, _ = load_checkpoint(path)
    # the vocab dicts map token -> id in id order, so their keys are the vocabularies
    return tensors["x"], tensors["y"], SimpleNamespace(input_vocab=list(target.input_vocab),
                                                      output_vocab=list(target.output_vocab))


def _run_examples(target: Target):
    from training.api import load_data
    from training.config import RunConfig
    from training.datasets import IGNORE
    if target.run.run.kind == "train":
        enc = load_data(RunConfig.from_dict(target.run.config))
        x = torch.cat([enc.train_x, enc.test_x])
        y = torch.cat([enc.train_y, enc.test_y])
    else:
        # a compiled program answers at every position: one row per labelled position, so a
        # circuit must explain all of them (its ground truth does)
        x, y, enc = _stored_examples(target)
        rows, positions = (y != IGNORE).nonzero(as_tuple=True)
        return x[rows], y[rows], positions, enc
    labelled = y != IGNORE
    last = torch.where(labelled, torch.arange(x.shape[1])[None], -1).max(1).values
    keep = last >= 0
    return x[keep], y[keep], last[keep], enc


def run_pairs(target: Target, kind: str, n: int = 256, seed: int = 0) -> PairDataset:
    """Pairs for an in-house run (see module docstring)."""
    if target.run is None:
        raise UserError(f"task {kind!r} needs an in-house run as the model")
    x, y, last, enc = _run_examples(target)
    rng = random.Random(seed)
    order = list(range(x.shape[0]))
    rng.shuffle(order)
    answers = {tuple(x[i, :last[i] + 1].tolist()): int(y[i, last[i]]) for i in range(len(x))}
    rows = []
    vocab = enc.input_vocab
    if kind == "induction":
        letters = [vocab.index(t) for t in vocab if t.isalpha() and len(t) == 1]
        numbers = [vocab.index(t) for t in vocab if t.isdigit()]
        if not letters or not numbers:
            raise UserError("the induction task needs a run trained on the 'induction' task")
    for i in order:
        clean = x[i].tolist()
        p = int(last[i])
        ans = int(y[i, p])
        corrupted = None
        if kind == "induction":
            query = clean[p]
            for _ in range(50):
                body = list(clean)
                for j in range(1, p):  # position 0 is BOS; keep the query letter itself
                    body[j] = rng.choice(letters if clean[j] in letters else numbers)
                if query in body[1:p:1] and body != clean:
                    prev = max(j for j in range(1, p) if body[j] == query)
                    if prev + 1 < p and body[prev + 1] in numbers:
                        corrupted = body
                        break
        elif kind == "modular":
            for _ in range(50):
                cand = list(clean)
                cand[0] = rng.choice([clean[0]] + [int(v) for v in x[:, 0].unique()])
                if cand != clean and tuple(cand[:p + 1]) in answers:
                    corrupted = cand
                    break
        else:  # resample: another example with the same answer position, different answer
            for j in rng.sample(order, min(len(order), 64)):
                if int(last[j]) == p and int(y[j, p]) != ans:
                    corrupted = x[j].tolist()
                    break
        if corrupted is None:
            continue
        key = tuple(corrupted[:p + 1])
        distractor = answers.get(key, -1)
        if kind == "induction":
            prev = max(j for j in range(1, p) if corrupted[j] == clean[p])
            num = vocab[corrupted[prev + 1]]
            distractor = enc.output_vocab.index(num) if num in enc.output_vocab else -1
        if distractor == ans:
            continue
        rows.append((clean, corrupted, p, ans, distractor))
        if len(rows) >= n:
            break
    return _stack(f"{target.task}:{kind}", rows)


# -- Hugging Face tokenizers ---------------------------------------------------------------
NAMES = ["Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Paul", "Kate",
         "Anna", "Mike", "Lisa", "David", "Sarah", "Mark"]
PLACES = ["store", "garden", "school", "park", "office", "hospital"]
OBJECTS = ["drink", "book", "ring", "ball", "bone", "kiss"]
NOUNS = ["war", "deal", "trip", "strike", "project", "dynasty"]


def _single(tok, piece: str) -> int | None:
    ids = tok.encode(piece, add_special_tokens=False)
    unk = getattr(tok, "unk_token_id", None)
    return ids[0] if len(ids) == 1 and ids[0] != unk else None


def _encode(tok, pieces: list[str]) -> list[int]:
    out: list[int] = []
    for p in pieces:
        out += tok.encode(p, add_special_tokens=False)
    return out


def ioi_pairs(target: Target, n: int = 256, seed: int = 0) -> PairDataset:
    """IOI: 'When A and B went to the P, B gave a O to' -> A (distractor B); corrupted with
    three unrelated names (ABC)."""
    tok = _need_tokenizer(target, "ioi")
    names = [m for m in NAMES if _single(tok, " " + m) is not None]
    if len(names) < 5:
        raise UserError("the tokenizer has fewer than 5 single-token names; IOI needs them")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c, d, e = rng.sample(names, 5)
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        tmpl = lambda x, y, z: ["When", f" {x}", " and", f" {y}", " went to the",  # noqa: E731
                                f" {place}", ",", f" {z}", " gave a", f" {obj}", " to"]
        clean = _encode(tok, tmpl(a, b, b))
        corrupted = _encode(tok, tmpl(c, d, e))
        if len(clean) != len(corrupted):
            continue
        rows.append((clean, corrupted, len(clean) - 1, _single(tok, " " + a),
                     _single(tok, " " + b)))
    return _stack("ioi", rows)


def greater_than_pairs(target: Target, n: int = 256, seed: int = 0) -> PairDataset:
    """Greater-Than: 'The N lasted from the year 17YY to the year 17' -> a year after YY; the
    answer is YY+1 and the distractor YY−1 (the logit difference is a proxy for Hanna et al.'s
    probability difference); corrupted with YY = 01."""
    tok = _need_tokenizer(target, "greater-than")
    years = [y for y in range(2, 99) if _single(tok, f"{y:02d}") is not None
             and _single(tok, f"{y - 1:02d}") is not None and _single(tok, f"{y + 1:02d}")]
    if not years or _single(tok, "01") is None:
        raise UserError("the tokenizer lacks two-digit year tokens; Greater-Than needs them")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        yy, noun = rng.choice(years), rng.choice(NOUNS)
        tmpl = lambda v: ["The", f" {noun}", " lasted from the year", " 17", v,  # noqa: E731
                          " to the year", " 17"]
        clean, corrupted = _encode(tok, tmpl(f"{yy:02d}")), _encode(tok, tmpl("01"))
        if len(clean) != len(corrupted):
            continue
        rows.append((clean, corrupted, len(clean) - 1, _single(tok, f"{yy + 1:02d}"),
                     _single(tok, f"{yy - 1:02d}")))
    return _stack("greater-than", rows)


def _need_tokenizer(target: Target, task: str):
    if target.tokenizer is None:
        raise UserError(f"task {task!r} needs a Hugging Face model with a tokenizer")
    return target.tokenizer


def check_task(task: str) -> None:
    """Cheap validation of a task name or file, before any model is loaded."""
    if str(task).endswith(".jsonl") or Path(str(task)).is_file():
        if not Path(str(task)).is_file():
            raise UserError(f"task file {str(task)!r} does not exist")
    elif task not in BUILTIN_TASKS:
        raise UserError(f"unknown task {task!r}: use a .jsonl pair file or one of "
                        f"{', '.join(BUILTIN_TASKS)}")


def make_pairs(task: str, target: Target, n: int = 256, seed: int = 0) -> PairDataset:
    """A task name (``BUILTIN_TASKS``) or a ``.jsonl`` file path."""
    if str(task).endswith(".jsonl") or Path(str(task)).is_file():
        return load_jsonl_pairs(task, target, limit=n)
    if task == "ioi":
        return ioi_pairs(target, n, seed)
    if task == "greater-than":
        return greater_than_pairs(target, n, seed)
    if task in ("induction", "modular", "resample"):
        return run_pairs(target, task, n, seed)
    raise UserError(f"unknown task {task!r}: use a .jsonl pair file or one of "
                    f"{', '.join(BUILTIN_TASKS)}")
