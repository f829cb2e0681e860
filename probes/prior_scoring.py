"""Scoring prior-task prompts with a causal LM: token encoding of prompt / answer / prior
context, teacher-forced answer log probability and greedy correctness, and the error-prior
statistics (accuracy by prior bin, Spearman correlation with a cluster bootstrap interval).

Shared by :mod:`probes.prior` (measure) and :mod:`probes.prior_finetune` (before / after).
A model is a ``logits_fn(tokens [b, s]) -> logits [b, s, vocab]``, so a TransformerBridge and a
``transformers`` model are scored by the same code. An answer counts as correct when greedy
decoding reproduces its tokens and the stop that ends it (the end-of-text token, or a string).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from training.corpora.prior_tasks import PriorTask, Stimulus
from workbench.errors import UserError


@dataclass(frozen=True)
class Encoded:
    """Token ids of one stimulus: the prompt, the answer (+ stop) and the prior context."""

    prompt: list[int]
    answer: list[int]
    prior_prompt: list[int]


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _start_id(tokenizer) -> int:
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else \
        tokenizer.eos_token_id
    if start is None:
        raise UserError("the model's tokenizer has neither a begin- nor an end-of-text token "
                        "to start a prompt with")
    return int(start)


class Encoder:
    """Encodes a task's stimuli with one tokenizer; refuses answers it cannot encode."""

    def __init__(self, tokenizer, task: PriorTask):
        if tokenizer is None:
            raise UserError("the model has no tokenizer: prior tasks are text prompts; give a "
                            "model directory holding tokenizer files")
        self.tok, self.task = tokenizer, task
        self.start = _start_id(tokenizer)
        if task.stop == "eos":
            if tokenizer.eos_token_id is None:
                raise UserError("the model's tokenizer has no end-of-text token to end answers")
            self.stop = [int(tokenizer.eos_token_id)]
        else:
            self.stop = _ids(tokenizer, task.stop)
        self.prior_context = [self.start] + _ids(tokenizer, task.prior_context)
        self._answers: dict[str, list[int]] = {}
        for value in task.values:
            self.answer_ids(value)  # every answer is checked before anything runs

    def answer_ids(self, value: str) -> list[int]:
        if value not in self._answers:
            text = self.task.answer_text(value)
            ids = _ids(self.tok, text)
            unk = getattr(self.tok, "unk_token_id", None)
            decoded = self.tok.decode(ids)
            if not ids or (unk is not None and unk in ids and self.tok.unk_token != self.tok.eos_token) \
                    or decoded.strip() != text.strip():
                raise UserError(f"the model's tokenizer cannot encode the answer {text.strip()!r} "
                                f"of task {self.task.name!r} (it decodes as {decoded!r})")
            self._answers[value] = ids
        return self._answers[value] + self.stop

    def encode(self, s: Stimulus) -> Encoded:
        return Encoded(prompt=[self.start] + _ids(self.tok, s.prompt),
                       answer=self.answer_ids(s.value), prior_prompt=self.prior_context)


@torch.no_grad()
def score_answers(logits_fn, contexts: list[list[int]], answers: list[list[int]], *,
                  batch_size: int = 32, device=None, pad_id: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the summed log probability of ``answers[i]`` after ``contexts[i]`` and
    whether greedy decoding reproduces it (teacher-forced argmax at every answer token)."""
    logps, correct = [], []
    for b in range(0, len(contexts), batch_size):
        ctx, ans = contexts[b:b + batch_size], answers[b:b + batch_size]
        width = max(len(c) + len(a) for c, a in zip(ctx, ans))
        # right padding: causal attention never lets padding change earlier positions
        x = torch.full((len(ctx), width), pad_id, dtype=torch.long)
        for r, (c, a) in enumerate(zip(ctx, ans)):
            x[r, :len(c) + len(a)] = torch.tensor(c + a)
        logits = logits_fn(x.to(device) if device is not None else x).float()  # [b, s, V]
        logprobs = torch.log_softmax(logits, -1).cpu()
        for r, (c, a) in enumerate(zip(ctx, ans)):
            rows = torch.arange(len(c) - 1, len(c) + len(a) - 1)  # positions predicting a
            target = torch.tensor(a)
            lp = logprobs[r, rows]  # [len(a), V]
            logps.append(float(lp.gather(1, target[:, None]).sum()))
            correct.append(bool((lp.argmax(-1) == target).all()))
    return np.array(logps), np.array(correct)


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho (average ranks for ties); None where either side is constant."""
    from scipy.stats import rankdata
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = rankdata(x), rankdata(y)
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True, kw_only=True)
class Correlation:
    """Spearman's rho between per-example error (1 = wrong) and the answer's log prior, with a
    bootstrap interval resampling whole answer values (examples of one value share a prior)."""

    rho: float | None
    ci_low: float | None
    ci_high: float | None
    n_examples: int
    n_values: int
    n_boot: int

    @property
    def significant(self) -> bool:
        return (self.ci_low is not None and self.ci_high is not None
                and (self.ci_low > 0 or self.ci_high < 0))

    def to_json(self) -> dict:
        return {"rho": _round(self.rho), "ci_low": _round(self.ci_low),
                "ci_high": _round(self.ci_high), "significant": self.significant,
                "n_examples": self.n_examples, "n_values": self.n_values, "n_boot": self.n_boot}


def _round(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(v, 4)


def error_prior_correlation(errors: np.ndarray, log_prior: np.ndarray, values: list[str], *,
                            n_boot: int = 1000, seed: int = 0) -> Correlation:
    rho = spearman(errors.astype(float), log_prior)
    by_value: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        by_value.setdefault(v, []).append(i)
    keys = list(by_value)
    rng = random.Random(f"prior bootstrap {seed}")
    draws = []
    if rho is not None:
        for _ in range(n_boot):
            idx = [i for k in rng.choices(keys, k=len(keys)) for i in by_value[k]]
            r = spearman(errors[idx].astype(float), log_prior[idx])
            draws.append(0.0 if r is None else r)  # a constant resample: no correlation
    low, high = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) \
        if draws else (None, None)
    return Correlation(rho=rho, ci_low=low, ci_high=high, n_examples=len(values),
                       n_values=len(keys), n_boot=n_boot if draws else 0)


def accuracy_by_bin(task: PriorTask, values: list[str], correct: np.ndarray,
                    log_prior: np.ndarray) -> dict[str, dict]:
    """Accuracy, count and mean log prior per prior bin (the task's conditions)."""
    out = {}
    for cond in ("common", "medium", "rare"):
        idx = [i for i, v in enumerate(values) if task.condition(v) == cond]
        if idx:
            out[cond] = {"n": len(idx), "accuracy": round(float(correct[idx].mean()), 4),
                         "mean_log_prior": round(float(log_prior[idx].mean()), 4)}
    return out


def per_value(task: PriorTask, values: list[str], correct: np.ndarray,
              log_prior: np.ndarray) -> list[dict]:
    """One row per answer value: condition, log prior, corpus weight, accuracy (the scatter)."""
    rows = []
    for v in dict.fromkeys(values):
        idx = [i for i, w in enumerate(values) if w == v]
        rows.append({"value": v, "condition": task.condition(v),
                     "log_prior": round(float(log_prior[idx].mean()), 4),
                     "corpus_weight": None if task.corpus_weight is None
                     else task.corpus_weight[v],
                     "accuracy": round(float(correct[idx].mean()), 4), "n": len(idx)})
    return rows


def check_bins(task: PriorTask) -> None:
    bins = {task.condition(v) for v in task.values}
    if len(bins) < 2:
        raise UserError(f"task {task.name!r} has answers in {len(bins)} prior bin "
                        f"({', '.join(sorted(bins))}); the error-prior analysis needs at least "
                        "two")
