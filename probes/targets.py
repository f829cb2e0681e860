"""Probe targets: labels, the train/test split (entity-level with a group column) and the
control task's random labels.

Labels are a column of the activations (``output``, ``birth_city``) or a file with one label
per example (``.txt`` lines, ``.json`` list, ``.jsonl`` records with a ``label`` field).
A numeric target with more than :data:`MAX_CLASSES_AUTO` distinct values is a regression
target (R²) unless ``task="classify"``; otherwise classes (accuracy).

Control task (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks"):
every *type* gets a random label drawn from the target's empirical distribution, fixed for the
whole dataset; the type is the token at the probed position (per position) or the value of a
group column. A probe that reaches high control accuracy is memorising types, so
selectivity = task accuracy - control accuracy measures what the representation adds.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from workbench.errors import UserError, check_choice

MAX_CLASSES_AUTO = 20


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    task: str  # "classify" | "regress"
    classes: tuple[str, ...] | None  # class names (classify)
    y: torch.Tensor  # [n] long class ids, or float values


def _read_labels_file(path: Path) -> list:
    if path.suffix == ".txt":
        return [line.rstrip("\n") for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise UserError(f"labels file {str(path)!r} must hold a JSON list")
        return data
    if path.suffix == ".jsonl":
        out = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                record = json.loads(line)
                if not isinstance(record, dict) or "label" not in record:
                    raise UserError(f"{path.name} line {number} has no 'label' field")
                out.append(record["label"])
        return out
    raise UserError(f"labels file {str(path)!r} must end in .txt, .json or .jsonl")


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def make_target(values: Sequence, n: int, *, name: str = "target", task: str = "auto") -> Target:
    """A target from ``n`` label values (``task``: auto, classify or regress)."""
    check_choice(task, "task", ("auto", "classify", "regress"))
    values = list(values)
    if len(values) != n:
        raise UserError(f"target {name!r} has {len(values)} labels but the activations hold "
                        f"{n} examples")
    distinct = set(map(str, values))
    if len(distinct) < 2:
        raise UserError(f"target {name!r} is constant ({next(iter(distinct))!r}): nothing to "
                        "probe")
    numbers = [_number(v) for v in values]
    numeric = all(x is not None for x in numbers)
    if task == "regress" and not numeric:
        raise UserError(f"target {name!r} is not numeric; it cannot be regressed")
    if task == "regress" or (task == "auto" and numeric and len(distinct) > MAX_CLASSES_AUTO):
        return Target(name=name, task="regress", classes=None,
                      y=torch.tensor(numbers, dtype=torch.float32))
    classes = tuple(sorted(distinct, key=lambda c: (_number(c) is None, _number(c) or 0, c)))
    index = {c: i for i, c in enumerate(classes)}
    return Target(name=name, task="classify", classes=classes,
                  y=torch.tensor([index[str(v)] for v in values]))


def load_target(acts, target: "str | Sequence", *, task: str = "auto") -> Target:
    """``target``: a column of ``acts``, a labels file, or a sequence of labels."""
    if not isinstance(target, str):
        return make_target(target, acts.n, task=task)
    if acts.columns and all(target in c for c in acts.columns):
        return make_target(acts.column(target), acts.n, name=target, task=task)
    path = Path(target).expanduser()
    if path.is_file():
        return make_target(_read_labels_file(path), acts.n, name=path.name, task=task)
    known = sorted(acts.columns[0]) if acts.columns else []
    raise UserError(f"target {target!r} is neither a column of the activations (columns: "
                    f"{', '.join(known) or 'none'}) nor a labels file")


def split(target: Target, *, groups: Sequence | None = None, test_fraction: float = 0.3,
          seed: int = 0, allow_untested: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_idx, test_idx)``. With ``groups`` every group lies on one side (entity-level);
    without, the split is stratified by class. Refuses a split leaving a class with no test
    example unless ``allow_untested`` (many classes, few entities: bioS cities)."""
    if not 0 < test_fraction < 1:
        raise UserError(f"test fraction must be strictly between 0 and 1, got {test_fraction!r}")
    n = len(target.y)
    rng = random.Random(f"probe split {seed}")
    if groups is not None:
        keys = list(dict.fromkeys(map(str, groups)))
        rng.shuffle(keys)
        n_test = max(1, round(test_fraction * len(keys)))
        if n_test >= len(keys):
            raise UserError(f"splitting {len(keys)} groups leaves no training group")
        test_keys = set(keys[:n_test])
        is_test = [str(g) in test_keys for g in groups]
    elif target.task == "classify":
        is_test = [False] * n
        by_class: dict[int, list[int]] = {}
        for i, c in enumerate(target.y.tolist()):
            by_class.setdefault(c, []).append(i)
        for members in by_class.values():
            rng.shuffle(members)
            for i in members[:round(test_fraction * len(members))]:
                is_test[i] = True
    else:
        order = list(range(n))
        rng.shuffle(order)
        is_test = [False] * n
        for i in order[:max(1, round(test_fraction * n))]:
            is_test[i] = True
    test = torch.tensor([i for i in range(n) if is_test[i]], dtype=torch.long)
    train = torch.tensor([i for i in range(n) if not is_test[i]], dtype=torch.long)
    if len(train) == 0 or len(test) == 0:
        raise UserError(f"the split leaves {'no training' if len(train) == 0 else 'no test'} "
                        f"examples ({n} examples, test fraction {test_fraction})")
    if target.task == "classify" and not allow_untested:
        missing = set(range(len(target.classes))) - set(target.y[test].tolist())
        if missing:
            raise UserError(f"the split leaves class {target.classes[min(missing)]!r} of "
                            f"{target.name!r} with no test example ({len(missing)} such "
                            "classes); use more data, another --test-fraction or --allow-untested-classes")
    return train, test


def control_labels(target: Target, types: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """Random labels per type: ``types`` [n, k] (k types per example, e.g. one per position)
    -> labels [k, n], each type mapped to one label drawn from the target's values."""
    n, k = types.shape
    gen = torch.Generator().manual_seed(seed + 7919)
    out = torch.empty((k, n), dtype=target.y.dtype)
    for j in range(k):
        uniq, inverse = torch.unique(types[:, j], return_inverse=True)
        draw = torch.randint(0, n, (len(uniq),), generator=gen)  # empirical distribution
        out[j] = target.y[draw][inverse]
    return out
