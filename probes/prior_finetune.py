"""Prior finetuning: finetune only chosen transformer blocks, lightly, on basic task prompts
whose answers are stratified by prior with whole answer values held out, and compare held-out
accuracy and the error-prior correlation before and after with controls at the same budget.

Method (Zhang et al. 2025, "Identifying and Mitigating the Influence of the Prior Distribution
in Large Language Models"): the localised blocks (:func:`probes.prior.choose_layers`, or a
list) are trained by :func:`probes.prior_train.finetune_blocks` (answer cross-entropy plus a KL
to the original model on everything else, early stopping on validation answer values), every
other parameter frozen (so bit-identical: tested). Held-out values (by default a third of each
bin's values, at least one) are never targets. Controls, each from the same starting weights
with the same config (steps, batch, lr, KL, early stopping): the same number of other blocks
(those with the smallest probe margin), and all blocks; plus the instruction baseline (the
untouched model with the "don't rely on your prior" instruction).

Saved as a new run of kind ``prior-finetune`` (config: the finetune config, ``parent``, the
control blocks, the prior, the source) whose checkpoint is the localised model as a Hugging
Face directory, loadable like a pretrain run's; the result is the run-store result
``(prior_finetune, task=<task>)`` and ``prior_finetune.json``. Each arm's evaluation is written
to ``arms/<arm>.json`` as it finishes, so a killed run resumes (``resume=``) from its last
finished arm; the arms are deterministic, so a resumed run ends with the same figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from probes.prior_scoring import (Encoder, accuracy_by_bin, check_bins, error_prior_correlation,
                                  score_answers)
from probes.prior_train import FinetuneConfig, check_trainable, finetune_blocks, spread_sample
from training.corpora.prior_tasks import PriorTask
from workbench.errors import UserError
from workbench.models import load_causal_lm

KIND = "prior-finetune"  # run kind of the finetuned model
RESULT_KIND = "prior_finetune"  # run-store result kind, on the finetune run, key task=<task>


def result_key(task: str) -> str:
    return f"task={task}"


def split_values(task: PriorTask, held_out: list[str] | None = None,
                 train_values: list[str] | None = None, *, seed: int = 0
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train values, held-out values); default held-out: a third of each bin (>= 1)."""
    for v in (held_out or []) + (train_values or []):
        if v not in task.conditions:
            raise UserError(f"answer value {v!r} is not an answer of task {task.name!r}")
    if held_out is None:
        rng = random.Random(f"prior held out {seed}")
        held_out = []
        for cond in ("common", "medium", "rare"):
            members = [v for v in task.values if task.condition(v) == cond]
            if len(members) >= 2:
                held_out += spread_sample(members, max(1, len(members) // 3), rng)
    train = [v for v in task.values if v not in held_out] if train_values is None \
        else list(train_values)
    both = sorted(set(train) & set(held_out), key=task.values.index)
    if both:
        raise UserError(f"held-out answer values also appear in training: "
                        f"{', '.join(both)}")
    if not held_out or not train:
        raise UserError("the finetune needs both training and held-out answer values")
    return tuple(train), tuple(held_out)


def parse_layers(spec: str) -> list[int] | None:
    """The block indices of ``--layers`` (``"0,2"``), sorted; None for ``"auto"`` (the
    localisation rule chooses). The CLI and the browser form both read it so."""
    if spec == "auto":
        return None
    try:
        return sorted({int(v) for v in spec.split(",") if v.strip()})
    except ValueError:
        raise UserError(f"--layers must be auto or block indices like 0,2, got {spec!r}") \
            from None


def check_layers(layers: list[int], n_layers: int) -> None:
    bad = [b for b in layers if not 0 <= b < n_layers]
    if bad:
        raise UserError(f"layer {bad[0]} is out of range: the model has blocks 0-{n_layers - 1}")
    if not layers:
        raise UserError("give at least one layer to finetune")


def evaluate(model, task: PriorTask, enc: Encoder, cfg: FinetuneConfig, prior: dict, *,
             instructed: bool = False, device=None) -> dict:
    """Held-out accuracy, accuracy by bin and the error-prior correlation on fresh prompts."""
    def fn(x):
        return model(x).logits
    stimuli = task.stimuli(cfg.n_eval, seed=cfg.seed + 1, instructed=instructed)
    encoded = [enc.encode(s) for s in stimuli]
    _, correct = score_answers(fn, [e.prompt for e in encoded], [e.answer for e in encoded],
                               device=device, pad_id=enc.start)
    values = [s.value for s in stimuli]
    lp = np.array([prior[v] for v in values])
    held = np.array([v in cfg.held_out for v in values])
    corr = error_prior_correlation(~correct, lp, values, seed=cfg.seed).to_json()
    return {"held_out_accuracy": round(float(correct[held].mean()), 4),
            "train_values_accuracy": round(float(correct[~held].mean()), 4),
            "accuracy": round(float(correct.mean()), 4),
            "accuracy_by_bin": accuracy_by_bin(task, values, correct, lp), "correlation": corr,
            "accuracy_by_value": {v: round(float(correct[[w == v for w in values]].mean()), 4)
                                  for v in task.values if v in values}}


def save_model_dir(model, tokenizer, source_dir: Path, target: Path) -> Path:
    """``model`` + tokenizer as a Hugging Face directory, written atomically (temp + rename);
    the source's ``workbench.json`` travels with it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if (source_dir / "workbench.json").is_file():
            shutil.copy2(source_dir / "workbench.json", tmp / "workbench.json")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@dataclass(frozen=True, kw_only=True)
class FinetuneResult:
    run_id: str | None
    task: str
    config: dict
    layers: list
    control_layers: list
    before: dict
    localised: dict
    other_layers: dict
    all_layers: dict
    instruction_baseline: dict
    checkpoint: str | None
    localisation: dict | None = None  # sites, probe margins and rule behind ``layers``

    def to_json(self) -> dict:
        return dict(self.__dict__)


ARMS = ("before", "instruction_baseline", "localised", "other_layers", "all_layers")


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def prior_finetune(source_dir: Path, tokenizer, task: PriorTask, cfg: FinetuneConfig,
                   prior: dict, control_layers: list[int], *, store=None, parent=None,
                   name=None, device=None, localisation: dict | None = None,
                   resume: str | None = None,
                   progress: Callable[[str], None] | None = None) -> FinetuneResult:
    """Finetune ``cfg.layers`` of the model in ``source_dir``, the controls beside it, and save
    the localised model as a run when ``store`` is given (validation first: nothing is
    written on bad input). ``resume``: the id of a killed run of this kind to finish.
    ``progress`` is told each arm as it starts; the run also logs ``arms_done`` per arm."""
    say = progress or (lambda _line: None)
    check_bins(task)
    model = load_causal_lm(source_dir, device)
    n_layers = model.config.num_hidden_layers
    check_layers(list(cfg.layers), n_layers)
    check_layers(control_layers, n_layers)
    check_trainable(model, cfg.trainable)
    enc = Encoder(tokenizer, task)
    arm_layers = {"localised": list(cfg.layers), "other_layers": list(control_layers),
                  "all_layers": list(range(n_layers))}

    def result(results, run_id=None, checkpoint=None) -> FinetuneResult:
        return FinetuneResult(run_id=run_id, task=task.name, config=cfg.to_dict(),
                              layers=list(cfg.layers), control_layers=list(control_layers),
                              checkpoint=checkpoint, localisation=localisation, **results)

    def arm(key: str, save=None) -> dict:
        if key in ("before", "instruction_baseline"):
            return evaluate(model, task, enc, cfg, prior, device=device,
                            instructed=key == "instruction_baseline")
        tuned, info = finetune_blocks(model, task, enc, arm_layers[key], cfg, device)
        out = {**evaluate(tuned, task, enc, cfg, prior, device=device), "training": info}
        if save is not None:
            save(tuned)
        return out

    if store is None:
        return result({key: arm(key) for key in ARMS})
    if resume is None:
        run = store.create_run(kind=KIND, task=task.name, name=name, parent=parent,
                               config=run_config(cfg, task, source_dir, parent, control_layers,
                                                 prior, localisation))
    else:
        run = store.get_run(resume)
    layout = store.layout(run.id)
    target = layout.model_dir(cfg.steps)

    def save(tuned) -> None:
        if target.exists():  # a killed run's copy of the same (deterministic) weights
            shutil.rmtree(target)
        save_model_dir(copy_to_cpu(tuned), tokenizer, source_dir, target)
        store.add_artifact(run.id, target / "model.safetensors", "checkpoint", step=cfg.steps)

    with store.lifecycle(run.id, resume=resume is not None) as life:
        arms_dir = layout.root / "arms"
        arms_dir.mkdir(parents=True, exist_ok=True)
        results = {}
        for i, key in enumerate(ARMS, 1):
            path = arms_dir / f"{key}.json"
            if path.is_file():
                results[key] = json.loads(path.read_text())
                continue
            blocks = f" (blocks {arm_layers[key]})" if key in arm_layers else ""
            say(f"prior-finetune: arm {i}/{len(ARMS)} {key}{blocks}")
            results[key] = arm(key, save if key == "localised" else None)
            _write_json(path, results[key])
            store.log_metrics(run.id, i, {"arms_done": float(i)})
        out = result(results, run.id, str(target))
        _write_json(layout.prior_finetune, results)
        store.put_result(run.id, RESULT_KIND, result_key(task.name), out.to_json())
        life.summary = {k: {"held_out_accuracy": v["held_out_accuracy"],
                            "rho": v["correlation"]["rho"]} for k, v in results.items()}
    return out


def copy_to_cpu(model):
    return model.cpu() if next(model.parameters()).device.type != "cpu" else model


def run_config(cfg: FinetuneConfig, task: PriorTask, source_dir: Path, parent, control_layers,
               prior: dict, localisation) -> dict:
    """The finetune run's config: everything a resume needs to redo the same work."""
    return {**cfg.to_dict(), "source": str(source_dir), "parent": parent,
            "control_layers": list(control_layers), "values": list(task.values),
            "prior": prior, "localisation": localisation}
