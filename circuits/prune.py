"""Edge Pruning: optimise hard-concrete edge masks on a frozen model.

Method: Bhaskar, Wettig, Friedman & Chen, "Finding Transformer Circuits with Edge Pruning"
(NeurIPS 2024); constants and settings in ``shared/reference/edge-pruning.md``. Only the mask
parameters log α (and the Lagrange multipliers) train. Loss = task loss (KL(full ‖ circuit) at
the answer positions, or −logit difference) + λ₁(s − t) + λ₂(s − t)², where s is the expected
edge sparsity ``1 − E[L0]/n``, t rises linearly from 0 to the target over the warm-up, and λ is
trained by gradient *ascent* (Adam with ``maximize=True``). Masks are sampled once per step and
shared by the batch; pruned edges carry the ablated activations (:mod:`circuits.evaluate`).
Everything random (init, samples, batch order) comes from generators seeded by ``seed``, so a
search is deterministic per seed. Optional node masks gate whole writers.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from circuits import masks
from circuits.datasets import PairDataset
from circuits.evaluate import ABLATIONS, Ablation, dense_edges, kl_full_circuit, logit_diff
from circuits.masked_forward import MaskedModel
from workbench.errors import UserError, check_choice

OBJECTIVES = ("kl", "logit-diff")


@dataclass(frozen=True, kw_only=True)
class PruneConfig:
    target_sparsity: float = 0.95
    steps: int = 3000
    target_warmup: int | None = None  # default: 5/6 of the steps (2500 of 3000)
    lr: float = 0.8
    lambda_lr: float = 0.8
    lr_warmup: int = 200
    batch_size: int = 32
    ablation: str = "corrupted"
    objective: str = "kl"
    node_masks: bool = False
    node_target_sparsity: float = 0.0
    seed: int = 0
    log_every: int = 10
    cache_limit_mb: float = 1024.0  # cache per-batch ablations/full logits up to this size
    checkpoint: bool = False  # gradient checkpointing per attention layer
    precision: str = "fp32"  # "bf16": the masked forward under bf16 autocast (losses in fp32)

    def __post_init__(self):
        for name in ("target_sparsity", "node_target_sparsity"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1.5:
                raise UserError(f"{name.replace('_', '-')} must be in [0, 1.5], got {v!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise UserError(f"steps must be a positive integer, got {self.steps!r}")
        if self.batch_size < 1:
            raise UserError(f"batch size must be positive, got {self.batch_size!r}")
        check_choice(self.ablation, "ablation", ABLATIONS)
        if self.objective not in OBJECTIVES:
            raise UserError(f"objective must be kl or logit-diff, got {self.objective!r}")
        if self.precision not in ("fp32", "bf16"):
            raise UserError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.lr <= 0 or self.lambda_lr < 0:
            raise UserError("learning rates must be positive")

    @property
    def warmup(self) -> int:
        return self.target_warmup if self.target_warmup is not None else (self.steps * 5) // 6

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class PruneResult:
    log_alpha: torch.Tensor  # [n_edges]
    node_log_alpha: torch.Tensor | None
    expected_sparsity: float
    steps: int
    wall_seconds: float
    final: dict = field(default_factory=dict)  # last logged metrics


class _Batches:
    """Fixed batches in a seeded order per epoch, with cached ablations and full logits."""

    def __init__(self, mm: MaskedModel, data: PairDataset, cfg: PruneConfig,
                 gen: torch.Generator, shard: tuple[int, int] = (0, 1)):
        self.mm, self.data, self.cfg, self.gen = mm, data, cfg, gen
        self.rank, self.world = shard
        n = len(data)
        perm = torch.randperm(n, generator=gen)
        self.batches = [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
        if len(self.batches) > 1 and len(self.batches[-1]) < cfg.batch_size:
            self.batches.pop()  # equal batch sizes: same step cost, no tiny noisy batch
        self.abl = Ablation(mm, data, cfg.ablation)
        g = mm.graph
        per = len(g.writers) * cfg.batch_size * data.clean.shape[1] * mm.W_E.shape[1] * 4
        self.cache_ok = cfg.ablation != "corrupted" or per * len(self.batches) < \
            cfg.cache_limit_mb * 2 ** 20
        self.cache: dict[int, tuple] = {}
        self.order: list[int] = []

    def next(self):
        if not self.order:
            self.order = torch.randperm(len(self.batches), generator=self.gen).tolist()
        i = self.order.pop()
        if i in self.cache:
            return self.cache[i]
        b = self.data.subset(self.batches[i][self.rank::self.world])
        with torch.no_grad():
            item = (b, self.abl(b), self.mm(b.clean, b.positions))
        if self.cache_ok:
            self.cache[i] = item
        return item


def _lr_lambda(cfg: PruneConfig):
    return lambda step: min(1.0, (step + 1) / cfg.lr_warmup) if cfg.lr_warmup else 1.0


def prune(mm: MaskedModel, data: PairDataset, cfg: PruneConfig, *,
          on_log: Callable[[int, dict], None] | None = None,
          grad_hook: Callable[[list[torch.Tensor]], None] | None = None,
          shard: tuple[int, int] = (0, 1)) -> PruneResult:
    """Run Edge Pruning; ``on_log(step, metrics)`` every ``log_every`` steps (metrics: loss,
    kl or logit_diff, sparsity, target, lambda1, lambda2). Data parallel: every process runs
    the same seeded batches and mask samples on its ``shard = (rank, world)`` slice of each
    batch, and ``grad_hook`` (an all-reduce mean) runs on the parameters after backward."""
    if len(data) == 0:
        raise UserError("the task has no examples")
    t0 = time.perf_counter()
    device = mm.W_E.device
    gen = torch.Generator().manual_seed(cfg.seed)
    sample_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    g = mm.graph
    log_alpha = masks.init_log_alpha(g.n_edges, gen).to(device).detach().requires_grad_(True)
    params = [log_alpha]
    node_la = None
    if cfg.node_masks:
        node_la = masks.init_log_alpha(len(g.writers), gen).to(device).detach()
        node_la.requires_grad_(True)
        params.append(node_la)
    lambdas = torch.zeros(4 if cfg.node_masks else 2, device=device, requires_grad=True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    lam_opt = torch.optim.Adam([lambdas], lr=cfg.lambda_lr, maximize=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    lam_sched = torch.optim.lr_scheduler.LambdaLR(lam_opt, _lr_lambda(cfg))
    batches = _Batches(mm, data.to(device), cfg, gen, shard)
    final: dict = {}
    # bf16 autocast exists on CPU too, so the GPU path is exercised by the CPU tests
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                else contextlib.nullcontext())
    for step in range(cfg.steps):
        batch, ablated, full = batches.next()
        z = masks.sample(log_alpha, sample_gen)
        nodes = None if node_la is None else masks.sample(node_la, sample_gen)
        with autocast:
            logits = mm(batch.clean, batch.positions, edges=dense_edges(mm, z), nodes=nodes,
                        ablated=ablated, checkpoint=cfg.checkpoint)
        logits = logits.float()  # the KL / logit difference and the masks stay in fp32
        if cfg.objective == "kl":
            task_loss = kl_full_circuit(full, logits)
        else:
            task_loss = -logit_diff(logits, batch.answer, batch.distractor).nanmean()
        frac = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0
        target = cfg.target_sparsity * frac
        s = masks.expected_sparsity(log_alpha)
        penalty = lambdas[0] * (s - target) + lambdas[1] * (s - target) ** 2
        if node_la is not None:
            ns = masks.expected_sparsity(node_la)
            nt = cfg.node_target_sparsity * frac
            penalty = penalty + lambdas[2] * (ns - nt) + lambdas[3] * (ns - nt) ** 2
        loss = task_loss + penalty
        opt.zero_grad(set_to_none=True)
        lam_opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_hook is not None:
            grad_hook(params + [lambdas])
        opt.step()
        lam_opt.step()
        sched.step()
        lam_sched.step()
        if (step + 1) % cfg.log_every == 0 or step == cfg.steps - 1:
            final = {"loss": float(loss.detach()), "sparsity": float(s.detach()), "target": target,
                     "lambda1": float(lambdas[0].detach()), "lambda2": float(lambdas[1].detach()),
                     ("kl" if cfg.objective == "kl" else "logit_diff"):
                         float(task_loss.detach()) * (1 if cfg.objective == "kl" else -1)}
            if node_la is not None:
                final["node_sparsity"] = float(ns.detach())
            if on_log is not None:
                on_log(step + 1, final)
    return PruneResult(log_alpha=log_alpha.detach().cpu(),
                       node_log_alpha=None if node_la is None else node_la.detach().cpu(),
                       expected_sparsity=float(masks.expected_sparsity(log_alpha.detach())),
                       steps=cfg.steps, wall_seconds=time.perf_counter() - t0, final=final)
