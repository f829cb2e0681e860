"""Causal check of a probe: intervene along the probe's direction and measure the change in the
model's answer (decodability is not use).

Method: take the fitted linear probe at one site and position (by default the best one).
``ablate``: mean-ablate the probe's subspace (the span of its centred class weight vectors,
rank <= classes - 1; the weight vector for a numeric target): ``h' = h - Q Q^T (h - mean)``.
``steer``: move ``h`` along ``w_c' - w_c`` until the probe prefers a random other class ``c'``
by margin ``alpha``. Both are applied through a forward hook at that position only, on held-out
examples; the same intervention along a random subspace / direction of equal rank / norm is the
control. Reported: the fraction of model answers (argmax at ``answer_position``) that change,
the mean drop in log-probability of the original answer, the answer accuracy before and after
when the target's classes are the model's output tokens, and for steering how often the probe
itself flips to ``c'``. References: Ravfogel et al. 2020 (INLP, ablating probe directions);
Elazar et al. 2021 (amnesic probing); Belinkov 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from probes.activations import Activations, check_same_model
from probes.fit import ProbeResult
from probes.positions import parse_positions, resolve
from probes.sources import ModelSource, load_data
from workbench.errors import UserError, check_choice


@dataclass(frozen=True, kw_only=True)
class CausalResult:
    site: str
    position: str
    mode: str  # ablate | steer
    rank: int
    n_examples: int
    answer_changed: float
    logprob_drop: float
    random_answer_changed: float
    random_logprob_drop: float
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    probe_flip: float | None = None  # steer: probe predicts the steered class afterwards


def _examples(model: ModelSource, acts: Activations, indices: list[int]):
    wanted, out = set(indices), {}
    for i, ex in enumerate(load_data(model, acts.manifest["spec"]["data"])):
        if i in wanted:
            out[i] = ex
    return [out[i] for i in indices]


def _answers(model, tokens, answer_pos, hook, fn):
    rows = torch.arange(tokens.shape[0])
    with torch.inference_mode():
        logits = (model.bridge(tokens) if fn is None else
                  model.bridge.run_with_hooks(tokens, fwd_hooks=[(hook, fn)]))
    logp = torch.log_softmax(logits[rows, answer_pos].float(), -1)  # [n, vocab]
    return logp


def causal_check(model: ModelSource, acts: Activations, probe: ProbeResult, *,
                 site: str | None = None, position: str | None = None, mode: str = "ablate",
                 alpha: float = 4.0, n_examples: int = 256, answer_position: str = "-1",
                 seed: int = 0) -> CausalResult:
    """Ablate or steer along ``probe``'s direction at ``site`` / ``position`` (see module)."""
    check_choice(mode, "causal mode", ("ablate", "steer"))
    check_same_model(acts.manifest, model.identity, acts.directory)
    if probe.weights is None:
        raise UserError(f"the causal check needs a linear probe (linear, logistic or lowrank), "
                        f"not {probe.kind}")
    if mode == "steer" and probe.task != "classify":
        raise UserError("steering needs a categorical target; use ablate for a numeric one")
    best = probe.best
    site, position = site or best["site"], position or best["position"]
    if site not in probe.sites or position not in probe.positions:
        raise UserError(f"the probe has no site {site!r} at position {position!r}")
    si, pi = probe.sites.index(site), probe.positions.index(position)
    w, b = probe.weights[si, pi], probe.biases[si, pi]  # [d, C], [C]
    hook = next(s["hook"] for s in acts.manifest["sites"] if s["name"] == site)
    test = probe.test_index[:n_examples].tolist()
    train_mask = torch.ones(acts.n, dtype=torch.bool)
    train_mask[probe.test_index] = False
    mean = acts.acts[site][train_mask, pi].mean(0)  # [d]
    examples = _examples(model, acts, test)
    width = max(len(ex.tokens) for ex in examples)
    tokens = torch.zeros(len(examples), width, dtype=torch.long)
    for r, ex in enumerate(examples):
        tokens[r, :len(ex.tokens)] = torch.tensor(ex.tokens)
    probe_pos = torch.tensor([resolve(parse_positions(position), len(ex.tokens), example=i,
                                      spans=ex.spans, offsets=ex.offsets)[0]
                              for i, ex in zip(test, examples)])
    answer_items = parse_positions(answer_position)
    answer_pos = torch.tensor([resolve(answer_items, len(ex.tokens), example=i, spans=ex.spans,
                                       offsets=ex.offsets)[0] for i, ex in zip(test, examples)])
    rows = torch.arange(len(examples))
    gen = torch.Generator().manual_seed(seed)
    d = w.shape[0]
    if probe.task == "classify":
        u, s, _ = torch.linalg.svd(w - w.mean(1, keepdim=True), full_matrices=False)
        basis = u[:, s > 1e-6 * s.max()]  # [d, k]
    else:
        basis = w / w.norm()
    rand_basis = torch.linalg.qr(torch.randn(d, basis.shape[1], generator=gen))[0]
    flips = {}

    def edit(directions, steer_random: bool):
        def fn(act, hook=None):
            act = act.clone()
            h = act[rows, probe_pos].float()  # [n, d]
            if mode == "ablate":
                h = h - ((h - mean) @ directions) @ directions.T
            else:
                logits = h @ w + b  # [n, C]
                cur = logits.argmax(-1)
                offset = torch.randint(1, w.shape[1], (len(h),), generator=gen)
                goal = (cur + offset) % w.shape[1]
                delta = (w[:, goal] - w[:, cur]).T  # [n, d]
                margin = (logits[rows, goal] - logits[rows, cur])
                step = ((alpha - margin) / (delta * delta).sum(-1).clamp_min(1e-12))[:, None]
                move = step * delta
                if steer_random:  # a random direction of the same length
                    r = torch.randn(move.shape, generator=gen)
                    move = r / r.norm(dim=-1, keepdim=True) * move.norm(dim=-1, keepdim=True)
                h = h + move
                flips[steer_random] = float(((h @ w + b).argmax(-1) == goal).float().mean())
            act[rows, probe_pos] = h.to(act.dtype)
            return act
        return fn

    before = _answers(model, tokens, answer_pos, hook, None)
    after = _answers(model, tokens, answer_pos, hook, edit(basis, False))
    after_rand = _answers(model, tokens, answer_pos, hook, edit(rand_basis, True))
    a0 = before.argmax(-1)

    def change(lp):
        return (float((lp.argmax(-1) != a0).float().mean()),
                float((before[rows, a0] - lp[rows, a0]).mean()))
    changed, drop = change(after)
    r_changed, r_drop = change(after_rand)
    acc0 = acc1 = None
    vocab = model.run.vocab().get("output_vocab") if model.run is not None else None
    if probe.task == "classify" and vocab and set(probe.classes) <= set(vocab):
        ids = {t: i for i, t in enumerate(vocab)}
        gold = torch.tensor([ids[str(acts.columns[i][probe.target])] for i in test]) \
            if probe.target in acts.columns[0] else None
        if gold is not None:
            acc0 = float((a0 == gold).float().mean())
            acc1 = float((after.argmax(-1) == gold).float().mean())
    return CausalResult(site=site, position=position, mode=mode, rank=int(basis.shape[1]),
                        n_examples=len(examples), answer_changed=round(changed, 6),
                        logprob_drop=round(drop, 6), random_answer_changed=round(r_changed, 6),
                        random_logprob_drop=round(r_drop, 6), accuracy_before=acc0,
                        accuracy_after=acc1, probe_flip=flips.get(False))
