"""Prior localisation: how much a model's errors on a deterministic task follow the prior of the
answer, and at which layers that prior is linearly decodable from the residual stream.

Method (after Zhang et al. 2025, "Identifying and Mitigating the Influence of the Prior
Distribution in Large Language Models"; stimuli after McCoy et al., "Embers of
Autoregression"):

1. The prior of an answer is measured from the model itself: the log probability of the answer
   string (with the stop that ends it) in the task's prior context, i.e. without the task
   instruction (``number:`` / ``Number:``); the corpus frequency is reported beside it where the
   task's corpus is ours.
2. Prompts with answers drawn uniformly are scored greedily; accuracy per prior bin (common /
   medium / rare) and Spearman's rho between per-example error and log prior, with a 95%
   bootstrap interval over answer values. The same with the "don't rely on your prior"
   instruction prefixed.
3. Ridge probes (``probes.fit``, closed form) from the residual stream at every layer and at
   the last prompt positions (``probes.collect``) to the log prior, on a random split of the
   prompts, beside a control whose target is the log prior shuffled across prompts (R² ~ 0 for
   a probe that fits no noise); and a stricter pair split by answer value (the test answers are
   never seen by the probe: R² above zero only where the prior generalises across answers),
   whose control shuffles the prior across answer values.
4. Localised layers, the stated rule (:data:`RULE`): the ``k = max(1, n_layers // 4)`` blocks
   whose output residual, at the last prompt position, has the largest held-out R² margin over
   the shuffled control; block ``b`` writes residual ``resid.(b+1)``.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from probes.prior_scoring import (Encoder, accuracy_by_bin, check_bins, error_prior_correlation,
                                  per_value, score_answers)
from probes.sources import DataSource, Example, ModelSource
from training.corpora.prior_tasks import PriorTask
from workbench.errors import UserError

RULE = ("the k = max(1, n_layers // 4) blocks whose output residual (resid.b+1) has the "
        "largest held-out R² margin over the shuffled-prior control at the last prompt "
        "position")
POSITIONS = "-3,-2,-1"
RESULT_KIND = "prior"  # run-store result kind of the analysis, on the model's run


def result_key(task: str, step) -> str:
    """The run-store key of a prior analysis: ``task=<task> step=<step>``."""
    return f"task={task} step={step}"


def store_prior_result(store, run_id: str, payload: dict) -> str:
    """Record a :meth:`PriorResult.to_json` payload as result ``(prior, task=T step=S)`` of
    ``run_id``; returns the key."""
    key = result_key(payload["task"], payload["model"]["step"])
    store.put_result(run_id, RESULT_KIND, key, payload)
    return key


@dataclass(frozen=True, kw_only=True)
class PriorResult:
    """Everything ``workbench probes prior`` reports (JSON via :meth:`to_json`)."""

    task: str
    model: dict
    n_examples: int
    accuracy: float
    accuracy_by_bin: dict
    correlation: dict  # Spearman error vs log prior (see probes.prior_scoring.Correlation)
    instructed_accuracy: float
    instructed_accuracy_by_bin: dict
    instructed_correlation: dict
    values: list  # per answer value: condition, log_prior, corpus_weight, accuracy, n
    sites: list
    positions: list
    r2: list  # [site][position] held-out R² of the log prior (random split of prompts)
    shuffled_r2: list  # the same with the prior shuffled across prompts
    r2_held_out_values: list  # [site][position], split by answer value
    shuffled_r2_held_out_values: list  # ... with the prior shuffled across answer values
    margin: list  # r2 - shuffled_r2 at the last position, per site
    localised_layers: list  # block indices
    rule: str = RULE
    probe: dict = field(default_factory=dict)  # n_train, n_test, split, l2
    # every answer value's log prior, prompted or not (``values`` has the prompted ones), so
    # prompts scored elsewhere (the finetune's evaluation) find theirs
    log_prior: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def logits_fn_of(bridge):
    def run(tokens):
        return bridge(tokens, return_type="logits")
    return run


def measure(model: ModelSource, task: PriorTask, *, n: int = 600, seed: int = 0,
            device=None, progress: Callable[[str], None] | None = None) -> dict:
    """Per-example correctness and log prior of ``n`` uniform prompts (plain and instructed);
    ``progress`` is told each stage as it starts."""
    say = progress or (lambda _line: None)
    check_bins(task)
    enc = Encoder(model.tokenizer, task)
    fn = logits_fn_of(model.bridge)
    plain = task.stimuli(n, seed=seed)
    instructed = task.stimuli(n, seed=seed, instructed=True)
    encoded = [enc.encode(s) for s in plain]
    for s, e in zip(plain, encoded):
        if len(e.prompt) + len(e.answer) > model.n_ctx:
            raise UserError(f"task {task.name!r}: a prompt for {s.value!r} has "
                            f"{len(e.prompt) + len(e.answer)} tokens, more than the model's "
                            f"context of {model.n_ctx}")
    pad = enc.start
    # one prior per answer value: the context is the same for all its examples
    uniq = list(task.values)
    say(f"prior of every value ({len(uniq)} values)")
    prior_lp, _ = score_answers(fn, [enc.prior_context] * len(uniq),
                                [enc.answer_ids(v) for v in uniq], device=device, pad_id=pad)
    prior = dict(zip(uniq, prior_lp.tolist()))
    say(f"scoring {len(encoded)} prompts")
    _, correct = score_answers(fn, [e.prompt for e in encoded], [e.answer for e in encoded],
                               device=device, pad_id=pad)
    enc_i = [enc.encode(s) for s in instructed]
    say(f"scoring {len(enc_i)} instructed prompts")
    _, correct_i = score_answers(fn, [e.prompt for e in enc_i], [e.answer for e in enc_i],
                                 device=device, pad_id=pad)
    return {"stimuli": plain, "encoded": encoded, "prior": prior, "correct": correct,
            "instructed": instructed, "instructed_correct": correct_i}


def shuffled_prior(prior: dict, seed: int) -> dict:
    """The log prior permuted across answer values (no value keeps its own where possible)."""
    keys = list(prior)
    rng = random.Random(f"prior shuffle {seed}")
    for _ in range(100):
        perm = keys[:]
        rng.shuffle(perm)
        if all(a != b for a, b in zip(keys, perm)):
            break
    return {k: prior[p] for k, p in zip(keys, perm)}


def probe_data(task: PriorTask, measured: dict, seed: int) -> DataSource:
    """The plain prompts as probe examples with ``value``, ``log_prior`` and control columns."""
    prior, shuffled = measured["prior"], shuffled_prior(measured["prior"], seed)
    pairs = list(zip(measured["stimuli"], measured["encoded"]))
    per_prompt = [prior[s.value] for s, _ in pairs]
    random.Random(f"prior prompt shuffle {seed}").shuffle(per_prompt)

    def examples():
        for (s, e), shuffled_prompt in zip(pairs, per_prompt):
            yield Example(tokens=e.prompt, columns={
                "value": s.value, "condition": s.condition, "log_prior": prior[s.value],
                "shuffled_log_prior": shuffled_prompt,
                "value_shuffled_log_prior": shuffled[s.value]})
    return DataSource(description=f"prior task {task.name} seed {seed}",
                      data_hash=f"{task.name}-{seed}-{len(pairs)}", count=len(pairs),
                      ref=f"prior:{task.name}", _iter=examples)


def choose_layers(margin_by_site: dict[str, float], n_layers: int) -> list[int]:
    """The stated rule :data:`RULE` on ``{"resid.L": margin}`` -> block indices."""
    k = max(1, n_layers // 4)
    blocks = [(m, int(s.split(".")[1]) - 1) for s, m in margin_by_site.items()
              if s.startswith("resid.") and int(s.split(".")[1]) >= 1]
    return sorted(b for _, b in sorted(blocks, key=lambda t: (-t[0], t[1]))[:k])


def fit_prior_probes(acts, *, seed: int = 0, l2: float = 0.1, test_fraction: float = 0.3):
    """Ridge probes to the log prior and their shuffled controls: (real, control) on a random
    split of the prompts, then (real, control) split by answer value."""
    from probes.fit import fit_probes
    opts = dict(kind="linear", task="regress", test_fraction=test_fraction, seed=seed, l2=l2)
    return (fit_probes(acts, "log_prior", **opts),
            fit_probes(acts, "shuffled_log_prior", **opts),
            fit_probes(acts, "log_prior", split_by="value", **opts),
            fit_probes(acts, "value_shuffled_log_prior", split_by="value", **opts))


def prior_analysis(model: ModelSource, task: PriorTask, *, n: int = 600, seed: int = 0,
                   l2: float = 0.1, positions: str = POSITIONS, device=None,
                   work_dir=None, progress: Callable[[str], None] | None = None
                   ) -> PriorResult:
    """Measure the prior's influence on ``model`` for ``task`` (see the module docstring);
    ``progress`` is told each stage as it starts (``scoring 600 prompts``, ...)."""
    from probes.activations import load_activations
    from probes.collect import collect_activations
    say = progress or (lambda _line: None)
    measured = measure(model, task, n=n, seed=seed, device=device, progress=say)
    prior = measured["prior"]
    values = [s.value for s in measured["stimuli"]]
    lp = np.array([prior[v] for v in values])
    correct = measured["correct"]
    values_i = [s.value for s in measured["instructed"]]
    lp_i = np.array([prior[v] for v in values_i])
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="prior-acts-") as tmp:
        say(f"collecting activations ({len(values)} prompts, every layer)")
        collect_activations(model, probe_data(task, measured, seed), tmp, layers="all",
                            positions=positions, hooks="resid", batch_size=64)
        acts = load_activations(tmp)
    say("fitting ridge probes")
    real, control, real_v, control_v = fit_prior_probes(acts, seed=seed, l2=l2)
    margin = {s: real.test_score[i][-1] - control.test_score[i][-1]
              for i, s in enumerate(real.sites)}
    rows = per_value(task, values, correct, lp)
    return PriorResult(
        task=task.name, model=model.identity, n_examples=len(values),
        accuracy=round(float(correct.mean()), 4),
        accuracy_by_bin=accuracy_by_bin(task, values, correct, lp),
        correlation=error_prior_correlation(~correct, lp, values, seed=seed).to_json(),
        instructed_accuracy=round(float(measured["instructed_correct"].mean()), 4),
        instructed_accuracy_by_bin=accuracy_by_bin(task, values_i,
                                                   measured["instructed_correct"], lp_i),
        instructed_correlation=error_prior_correlation(~measured["instructed_correct"], lp_i,
                                                       values_i, seed=seed).to_json(),
        values=rows, sites=list(real.sites), positions=list(real.positions),
        r2=real.test_score, shuffled_r2=control.test_score,
        r2_held_out_values=real_v.test_score,
        shuffled_r2_held_out_values=control_v.test_score,
        margin=[round(margin[s], 6) for s in real.sites],
        localised_layers=choose_layers(margin, model.n_layers),
        probe={"n_train": real.n_train, "n_test": real.n_test, "l2": l2,
               "kind": "linear (ridge)", "test_fraction": real.test_fraction,
               "held_out_values": {"n_train": real_v.n_train, "n_test": real_v.n_test}},
        log_prior={v: round(lp_v, 4) for v, lp_v in prior.items()})
