"""The training loop of a prior finetune: only the chosen transformer blocks of a copy of a
``transformers`` causal LM are trained, lightly, on basic task prompts, with early stopping on
answer values kept out of training for validation.

Recipe (after Zhang et al. 2025; the choices below are ours, since the paper's details are not
available to us), configured by :class:`FinetuneConfig`:

- answers are drawn bin first (common / medium / rare equally often), then uniformly within the
  bin, from ``train_values`` only; ``held_out`` and ``val_values`` are never targets;
- loss = cross-entropy of the answer tokens + ``kl_weight`` x KL(original || tuned) of the
  next-token distribution at every other position of the sequence and, at the answer
  positions, over every token except the correct one (both renormalised). The KL keeps the rest
  of the distribution where it was; in particular it keeps the ranking among wrong answers, so
  the finetune cannot learn that "answers are among the training values" (the plain
  cross-entropy pushes every never-seen value down);
- AdamW at ``lr`` (no weight decay), at most ``steps`` steps; every ``eval_every`` steps (and
  at step 0) greedy accuracy on prompts whose answers are ``val_values``: the best state is
  kept (ties: the higher answer log probability), and training stops after ``patience``
  evaluations without improvement. Step 0 is a candidate: a finetune that never helps the
  validation values returns the original weights;
- ``trainable``: every parameter of the chosen blocks, only their biases, or (``lowrank``) a
  rank-``rank`` update ``u @ v`` of each chosen block's output projections (attention out,
  MLP out; ``u`` starts at zero), folded into the weights when training ends.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np
import torch

from probes.prior_scoring import Encoder, score_answers
from training.corpora.prior_tasks import PriorTask
from workbench.errors import UserError


TRAINABLE = ("all", "biases", "lowrank")
# the projections that write a block's output into the residual stream (GPT-2, Llama)
_OUTPUT_PROJECTIONS = ("attn.c_proj", "mlp.c_proj", "self_attn.o_proj", "mlp.down_proj")


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """What a prior finetune does; stored with its run (see the module docstring)."""

    task: str
    layers: tuple[int, ...]  # block indices
    held_out: tuple[str, ...]
    train_values: tuple[str, ...]
    val_values: tuple[str, ...] = ()  # early stopping on these (never trained on); () = none
    steps: int = 150  # the step budget, the same for every arm
    batch_size: int = 32
    lr: float = 3e-4
    kl_weight: float = 1.0
    eval_every: int = 10
    patience: int = 5  # evaluations without improvement before stopping; 0: run every step
    n_val: int = 60  # validation prompts
    n_eval: int = 300
    # all: every parameter of the chosen blocks; biases: their biases; lowrank: a rank-``rank``
    # update of each chosen block's output projections (attention out, MLP out), merged after
    trainable: str = "all"
    rank: int = 2
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "n_val", "n_eval", "rank"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be positive, got {getattr(self, name)}")
        if self.trainable not in TRAINABLE:
            raise UserError(f"trainable must be one of {', '.join(TRAINABLE)}, "
                            f"got {self.trainable!r}")
        if self.patience < 0:
            raise UserError(f"patience must be 0 or more, got {self.patience}")
        if not self.lr > 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        if not self.kl_weight >= 0:
            raise UserError(f"kl_weight must be 0 or more, got {self.kl_weight}")
        for a, b in (("held_out", "train_values"), ("held_out", "val_values"),
                     ("val_values", "train_values")):
            both = [v for v in getattr(self, a) if v in getattr(self, b)]
            if both:
                raise UserError(f"{a.replace('_', '-')} answer values also appear in "
                                f"{'training' if b == 'train_values' else b}: "
                                f"{', '.join(both)}")
        if not self.train_values:
            raise UserError("the finetune needs training answer values")

    def to_dict(self) -> dict:
        return {**self.__dict__, "layers": list(self.layers), "held_out": list(self.held_out),
                "train_values": list(self.train_values), "val_values": list(self.val_values)}

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        return cls(**{**d, **{k: tuple(d[k]) for k in ("layers", "held_out", "train_values",
                                                        "val_values") if k in d}})


def spread_sample(members: list[str], k: int, rng: random.Random) -> list[str]:
    """``k`` of ``members`` evenly spaced through their order (a random offset), so that a
    held-out or validation set spans the bin (small and large counts alike)."""
    step = len(members) / k
    offset = rng.random() * step
    return [members[int(offset + j * step)] for j in range(k)]


def validation_values(task: PriorTask, train: tuple[str, ...], fraction: float, *,
                      seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, validation): ``fraction`` of the training values of every prior bin that has
    at least three of them, kept out of training for early stopping."""
    if not 0 <= fraction < 1:
        raise UserError(f"the validation fraction must be in [0, 1), got {fraction}")
    rng = random.Random(f"prior validation {seed}")
    val: list[str] = []
    for cond in ("common", "medium", "rare"):
        members = [v for v in train if task.condition(v) == cond]
        if fraction > 0 and len(members) >= 3:
            val += spread_sample(members, max(1, round(len(members) * fraction)), rng)
    return tuple(v for v in train if v not in val), tuple(v for v in train if v in val)


def blocks_of(model) -> torch.nn.ModuleList:
    """The transformer blocks of a ``transformers`` causal LM (GPT-2 ``h``, Llama ``layers``)."""
    n = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise UserError(f"cannot find the {n} transformer blocks of {type(model).__name__}")


def check_trainable(model, trainable: str) -> None:
    """Refuse ``trainable`` biases on a model whose blocks have none (Llama's), before any
    work: every block is trained in the all-blocks arm, so each must have something to train."""
    if trainable != "biases":
        return
    bare = [b for b, block in enumerate(blocks_of(model))
            if not any(n.endswith("bias") for n, _ in block.named_parameters())]
    if bare:
        raise UserError(f"--trainable biases: block {bare[0]} of this {type(model).__name__} "
                        f"has no biases; use --trainable lowrank or all")


class LowRankDelta(torch.nn.Module):
    """A weight plus a trainable rank-r product ``u @ v`` (u starts at zero: no change)."""

    def __init__(self, shape: torch.Size, rank: int, generator: torch.Generator):
        super().__init__()
        self.u = torch.nn.Parameter(torch.zeros(shape[0], rank))  # [rows, r]
        self.v = torch.nn.Parameter(torch.randn(rank, shape[1], generator=generator)
                                    / shape[1] ** 0.5)  # [r, cols]

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.u @ self.v).to(weight.dtype)


def _output_projections(block) -> list[tuple[str, torch.nn.Module]]:
    found = [(n, m) for n, m in block.named_modules() if n.endswith(_OUTPUT_PROJECTIONS)
             and isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not found:
        raise UserError(f"trainable lowrank: no output projection ({', '.join(_OUTPUT_PROJECTIONS)})"
                        f" in a block of type {type(block).__name__}")
    return found


def add_low_rank(blocks, layers: list[int], rank: int, seed: int) -> list:
    """Give each output projection of ``layers`` a :class:`LowRankDelta`; its parameters."""
    from torch.nn.utils import parametrize
    generator = torch.Generator().manual_seed(seed)
    named = []
    for b in layers:
        for n, module in _output_projections(blocks[b]):
            w = module.weight
            delta = LowRankDelta(w.shape, rank, generator).to(w.device)
            parametrize.register_parametrization(module, "weight", delta)
            named += [(f"{b}.{n}.u", delta.u), (f"{b}.{n}.v", delta.v)]
    return named


def merge_low_rank(blocks, layers: list[int]) -> None:
    """Fold each :class:`LowRankDelta` into its weight (a plain module again, savable)."""
    from torch.nn.utils import parametrize
    for b in layers:
        for _, module in _output_projections(blocks[b]):
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
                module.weight.requires_grad_(False)


def train_batches(task: PriorTask, enc: Encoder, cfg: FinetuneConfig):
    """``cfg.steps`` batches of (prompt ids, answer ids), answers stratified by prior bin."""
    rng = random.Random(f"prior finetune {cfg.seed}")
    bins: dict[str, list[str]] = {}
    for v in cfg.train_values:
        bins.setdefault(task.condition(v), []).append(v)
    names = sorted(bins)
    for _ in range(cfg.steps):
        batch = []
        for _ in range(cfg.batch_size):
            v = rng.choice(bins[rng.choice(names)])  # stratified by prior bin
            e = enc.encode(task.prompt(v, rng))
            batch.append((e.prompt, e.answer))
        yield batch


def kept_distribution_kl(tuned: torch.Tensor, original: torch.Tensor, targets: torch.Tensor,
                         valid: torch.Tensor) -> torch.Tensor:
    """Mean KL(original || tuned) over ``valid`` positions; where ``targets`` >= 0 (answer
    positions) the target token is left out of both distributions.

    tuned, original: [b, s, V] logits; targets, valid: [b, s]."""
    drop = torch.zeros_like(tuned, dtype=torch.bool)  # [b, s, V]
    answer = targets >= 0
    drop[answer.nonzero(as_tuple=True) + (targets[answer],)] = True
    # a large negative, not -inf: 0 * (log 0 - log 0) would be nan
    t = torch.log_softmax(tuned.float().masked_fill(drop, -1e4), -1)
    o = torch.log_softmax(original.float().masked_fill(drop, -1e4), -1)
    kl = (o.exp() * (o - t)).sum(-1)  # [b, s]
    return kl[valid].mean()


def validation_score(model, task: PriorTask, enc: Encoder, cfg: FinetuneConfig, device=None
                     ) -> tuple[float, float]:
    """(greedy accuracy averaged over the prior bins, mean answer log probability) on prompts
    answered by ``val_values``: each bin counts alike, as removing the prior's pull asks."""
    stimuli = task.stimuli(cfg.n_val, seed=cfg.seed + 2, values=cfg.val_values)
    encoded = [enc.encode(s) for s in stimuli]
    lp, correct = score_answers(lambda x: model(x).logits, [e.prompt for e in encoded],
                                [e.answer for e in encoded], device=device, pad_id=enc.start)
    bins: dict[str, list[bool]] = {}
    for s, ok in zip(stimuli, correct):
        bins.setdefault(s.condition, []).append(bool(ok))
    return float(np.mean([np.mean(v) for v in bins.values()])), float(np.mean(lp))


def finetune_blocks(model, task: PriorTask, enc: Encoder, layers: list[int],
                    cfg: FinetuneConfig, device=None) -> tuple[torch.nn.Module, dict]:
    """A copy of ``model`` with only ``layers`` trained (see the module docstring), and what
    happened: steps run, the step kept, the validation curve and the last losses."""
    tuned = copy.deepcopy(model)
    blocks = blocks_of(tuned)
    for p in tuned.parameters():
        p.requires_grad_(False)
    if cfg.trainable == "lowrank":
        named = add_low_rank(blocks, layers, cfg.rank, cfg.seed)
    else:
        named = [(n, p) for b in layers for n, p in blocks[b].named_parameters(prefix=str(b))
                 if cfg.trainable == "all" or n.endswith("bias")]
    for _, p in named:
        p.requires_grad_(True)
    opt = torch.optim.AdamW([p for _, p in named], lr=cfg.lr, weight_decay=0.0)
    torch.manual_seed(cfg.seed)
    tuned.eval()  # no dropout in these models; eval keeps the steps deterministic
    model.eval()
    early = bool(cfg.val_values)
    curve, best, best_state, since, step, losses = [], None, None, 0, 0, {}

    def check(at: int) -> bool:
        nonlocal best, best_state, since
        acc, lp = validation_score(tuned, task, enc, cfg, device)
        curve.append({"step": at, "val_accuracy": round(acc, 4), "val_log_prob": round(lp, 4)})
        if best is None or (acc, lp) > best[:2]:
            best, since = (acc, lp, at), 0
            best_state = {n: p.detach().clone() for n, p in named}
        else:
            since += 1
        return cfg.patience > 0 and since >= cfg.patience

    if early:
        check(0)
    for step, batch in enumerate(train_batches(task, enc, cfg), start=1):
        width = max(len(c) + len(a) for c, a in batch)
        x = torch.full((len(batch), width), enc.start, dtype=torch.long)
        y = torch.full((len(batch), width), -100, dtype=torch.long)
        valid = torch.zeros((len(batch), width), dtype=torch.bool)
        for r, (c, a) in enumerate(batch):
            x[r, :len(c) + len(a)] = torch.tensor(c + a)
            y[r, len(c) - 1:len(c) + len(a) - 1] = torch.tensor(a)  # predict answer tokens
            valid[r, :len(c) + len(a) - 1] = True
        x, y, valid = (t.to(device) if device else t for t in (x, y, valid))
        logits = tuned(x).logits  # [b, s, V]
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        loss = ce
        if cfg.kl_weight > 0:
            with torch.no_grad():
                original = model(x).logits  # [b, s, V]
            kl = kept_distribution_kl(logits, original, y, valid)
            loss = ce + cfg.kl_weight * kl
            losses["kl"] = round(float(kl.detach()), 5)
        losses["ce"] = round(float(ce.detach()), 5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if early and step % cfg.eval_every == 0 and check(step):
            break
    if early and step % cfg.eval_every != 0:
        check(step)
    if early:
        with torch.no_grad():
            for n, p in named:
                p.copy_(best_state[n])
    if cfg.trainable == "lowrank":
        merge_low_rank(blocks, layers)
    tuned.eval()
    return tuned, {"steps_run": step, "kept_step": best[2] if early else step,
                   "validation": curve, "last_losses": losses}
