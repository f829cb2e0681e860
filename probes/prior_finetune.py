"""Prior finetuning: train only chosen transformer blocks, lightly, on basic task prompts whose
answers are stratified by prior with whole answer values held out, and compare held-out
accuracy and the error-prior correlation before and after with controls at the same budget.

Method (Zhang et al. 2025, "Identifying and Mitigating the Influence of the Prior Distribution
in Large Language Models"): the localised blocks (:func:`probes.prior.choose_layers`, or a
list) are finetuned with AdamW on the cross-entropy of the answer tokens only, every other
parameter frozen (so bit-identical: tested). Training answers are drawn bin first (common /
medium / rare equally often), then uniformly within the bin; held-out values (by default a
third of each bin's values, at least one) never appear in training. Controls, each from the
same starting weights at the same steps, batch and learning rate: the same number of other
blocks (those with the smallest probe margin), and all blocks; plus the instruction baseline
(the untouched model with the "don't rely on your prior" instruction). The localised model is
saved as a new run of kind ``prior-finetune`` (parent: the source run) whose checkpoint is a
Hugging Face directory, loadable like a pretrain run's.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from probes.prior_scoring import (Encoder, accuracy_by_bin, check_bins, error_prior_correlation,
                                  score_answers)
from training.corpora.prior_tasks import PriorTask
from workbench.errors import UserError

KIND = "prior-finetune"  # run kind of the finetuned model
RESULT_KIND = "prior_finetune"  # run-store result kind, on the finetune run, key task=<task>


def result_key(task: str) -> str:
    return f"task={task}"


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """What a prior finetune does; stored with its run."""

    task: str
    layers: tuple[int, ...]  # block indices
    held_out: tuple[str, ...]
    train_values: tuple[str, ...]
    steps: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    n_eval: int = 300
    seed: int = 0

    def to_dict(self) -> dict:
        return {**self.__dict__, "layers": list(self.layers), "held_out": list(self.held_out),
                "train_values": list(self.train_values)}


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
                held_out += rng.sample(members, max(1, len(members) // 3))
    train = [v for v in task.values if v not in held_out] if train_values is None \
        else list(train_values)
    both = sorted(set(train) & set(held_out), key=task.values.index)
    if both:
        raise UserError(f"held-out answer values also appear in training: "
                        f"{', '.join(both)}")
    if not held_out or not train:
        raise UserError("the finetune needs both training and held-out answer values")
    return tuple(train), tuple(held_out)


def blocks_of(model) -> torch.nn.ModuleList:
    """The transformer blocks of a ``transformers`` causal LM (GPT-2 ``h``, Llama ``layers``)."""
    n = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise UserError(f"cannot find the {n} transformer blocks of {type(model).__name__}")


def check_layers(layers: list[int], n_layers: int) -> None:
    bad = [b for b in layers if not 0 <= b < n_layers]
    if bad:
        raise UserError(f"layer {bad[0]} is out of range: the model has blocks 0-{n_layers - 1}")
    if not layers:
        raise UserError("give at least one layer to finetune")


def _batches(task: PriorTask, enc: Encoder, values: tuple[str, ...], cfg: FinetuneConfig):
    rng = random.Random(f"prior finetune {cfg.seed}")
    bins: dict[str, list[str]] = {}
    for v in values:
        bins.setdefault(task.condition(v), []).append(v)
    names = sorted(bins)
    for _ in range(cfg.steps):
        batch = []
        for _ in range(cfg.batch_size):
            v = rng.choice(bins[rng.choice(names)])  # stratified by prior bin
            e = enc.encode(task.prompt(v, rng))
            batch.append((e.prompt, e.answer))
        yield batch


def finetune_blocks(model, task: PriorTask, enc: Encoder, layers: list[int],
                    cfg: FinetuneConfig, device=None):
    """A copy of ``model`` with only ``layers`` trained (AdamW on answer-token cross-entropy)."""
    model = copy.deepcopy(model)
    blocks = blocks_of(model)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for b in layers for p in blocks[b].parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    torch.manual_seed(cfg.seed)
    model.train()
    for batch in _batches(task, enc, cfg.train_values, cfg):
        width = max(len(c) + len(a) for c, a in batch)
        x = torch.full((len(batch), width), enc.start, dtype=torch.long)
        y = torch.full((len(batch), width), -100, dtype=torch.long)
        for r, (c, a) in enumerate(batch):
            x[r, :len(c) + len(a)] = torch.tensor(c + a)
            y[r, len(c) - 1:len(c) + len(a) - 1] = torch.tensor(a)  # predict answer tokens
        logits = model(x.to(device) if device else x).logits  # [b, s, V]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(),
                                                 y.flatten().to(logits.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return model


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
            "accuracy_by_bin": accuracy_by_bin(task, values, correct, lp), "correlation": corr}


def load_causal_lm(directory: Path, device=None):
    from workbench.models import quiet_transformers
    quiet_transformers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(directory), torch_dtype=torch.float32)
    return model.to(device).eval() if device else model.eval()


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


def prior_finetune(source_dir: Path, tokenizer, task: PriorTask, cfg: FinetuneConfig,
                   prior: dict, control_layers: list[int], *, store=None, parent=None,
                   name=None, device=None, localisation: dict | None = None
                   ) -> FinetuneResult:
    """Finetune ``cfg.layers`` of the model in ``source_dir``, the controls beside it, and save
    the localised model as a run when ``store`` is given (validation first: nothing is
    written on bad input)."""
    check_bins(task)
    model = load_causal_lm(source_dir, device)
    n_layers = model.config.num_hidden_layers
    check_layers(list(cfg.layers), n_layers)
    check_layers(control_layers, n_layers)
    enc = Encoder(tokenizer, task)
    results = {"before": evaluate(model, task, enc, cfg, prior, device=device),
               "instruction_baseline": evaluate(model, task, enc, cfg, prior, instructed=True,
                                                device=device)}
    tuned = finetune_blocks(model, task, enc, list(cfg.layers), cfg, device)
    results["localised"] = evaluate(tuned, task, enc, cfg, prior, device=device)
    for key, layers in (("other_layers", control_layers), ("all_layers", range(n_layers))):
        other = finetune_blocks(model, task, enc, list(layers), cfg, device)
        results[key] = evaluate(other, task, enc, cfg, prior, device=device)
        del other
    run_id = checkpoint = None
    if store is None:
        return FinetuneResult(run_id=None, task=task.name, config=cfg.to_dict(),
                              layers=list(cfg.layers), control_layers=list(control_layers),
                              checkpoint=None, localisation=localisation, **results)
    run = store.create_run(kind=KIND, task=task.name, name=name, parent=parent,
                           config={**cfg.to_dict(), "source": str(source_dir),
                                   "parent": parent, "control_layers": control_layers})
    run_id = run.id
    with store.lifecycle(run_id) as life:
        target = save_model_dir(tuned.cpu(), tokenizer, source_dir,
                                store.layout(run_id).model_dir(cfg.steps))
        store.add_artifact(run_id, target / "model.safetensors", "checkpoint", step=cfg.steps)
        checkpoint = str(target)
        result = FinetuneResult(run_id=run_id, task=task.name, config=cfg.to_dict(),
                                layers=list(cfg.layers), control_layers=list(control_layers),
                                checkpoint=checkpoint, localisation=localisation, **results)
        (store.layout(run_id).root / "prior_finetune.json").write_text(
            json.dumps(results, indent=2, sort_keys=True) + "\n")
        store.put_result(run_id, RESULT_KIND, result_key(task.name), result.to_json())
        life.summary = {k: {"held_out_accuracy": v["held_out_accuracy"],
                            "rho": v["correlation"]["rho"]} for k, v in results.items()}
    return result
