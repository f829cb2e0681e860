"""The training loop: AdamW with warm-up and constant/cosine schedule, full- or mini-batch,
loss at labelled positions (optionally in float64), periodic evaluation, metrics to the run
store, a checkpoint series, and exact resume.

Determinism: the only randomness is the model's seeded initialisation and the mini-batch order,
which is a function of ``(seed, epoch)``; so a run resumed from a checkpoint (weights, AdamW
state and step) replays the same updates and ends on bit-identical weights.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training import checkpoints as ckpt
from training import schedule
from training.config import RunConfig, TrainConfig
from training.datasets import IGNORE, EncodedTask
from training.distributed import (SINGLE, DistContext, barrier, full_tensor, shard,
                                  shard_fully, wrap)
from workbench.checkpoint import weights_sha256
from workbench.fast_forward import logits_at
from workbench.lifecycle import RunFailed
from workbench.store import RunStore


class TrainingFailed(RunFailed):
    """The run itself failed (e.g. the loss became NaN); the run lifecycle records it as
    ``failed`` with this message."""


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    task: str
    steps: int
    wall_seconds: float
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    checkpoint: str
    weights_sha256: str
    status: str = "completed"

    def to_json(self) -> dict:
        return dict(self.__dict__)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for update number ``step`` (0-based): linear warm-up, then the schedule."""
    return schedule.lr_at(step, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                          schedule=cfg.schedule, min_lr_ratio=cfg.min_lr_ratio)


def checkpoint_steps(cfg: TrainConfig) -> set[int]:
    """Steps (counted in completed updates) at which a checkpoint is written."""
    steps = set(range(cfg.checkpoint_every, cfg.steps + 1, cfg.checkpoint_every))
    if cfg.log_checkpoints:
        for i in range(cfg.log_checkpoints):
            steps.add(max(1, round(cfg.steps ** (i / max(cfg.log_checkpoints - 1, 1)))))
    steps.add(cfg.steps)
    return steps


def resolve_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingFailed("device=cuda was requested but CUDA is not available")
        return torch.device("cuda")
    return torch.device("cpu")


class _Batches:
    """Mini-batch indices for update ``step``: a per-epoch permutation seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.seed = n, seed
        self.batch_size = n if batch_size == 0 or batch_size >= n else batch_size
        self.per_epoch = math.ceil(n / self.batch_size)
        self._epoch, self._perm = -1, None

    def __call__(self, step: int) -> torch.Tensor | None:
        if self.batch_size == self.n:
            return None  # full batch
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[k * self.batch_size:(k + 1) * self.batch_size]


class LogitsAt(torch.nn.Module):
    """``logits_at`` as a module, so DDP can wrap the forward the trainer really runs."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return logits_at(self.model, tokens, positions)


def _loss(logits: torch.Tensor, y: torch.Tensor, loss_dtype: torch.dtype,
          n_labels: torch.Tensor | None = None, world_size: int = 1) -> torch.Tensor:
    """Mean cross-entropy over labelled entries. logits [b, n, v], y [b, n].

    On a shard, the sum is divided by the whole batch's label count and scaled by the world
    size, so DDP's gradient average equals the full batch's mean gradient (uneven shards too).
    """
    flat_logits = logits.reshape(-1, logits.shape[-1]).to(loss_dtype)
    if n_labels is None:
        return F.cross_entropy(flat_logits, y.reshape(-1), ignore_index=IGNORE)
    total = F.cross_entropy(flat_logits, y.reshape(-1), ignore_index=IGNORE, reduction="sum")
    return total * world_size / n_labels


@torch.no_grad()
def evaluate(model, x, y, positions, loss_dtype=torch.float64, batch: int = 8192):
    """(loss, per-token accuracy) of ``model`` (a native model or its ``LogitsAt``, sharded
    or not) on a whole split, in chunks."""
    forward = model if isinstance(model, LogitsAt) else LogitsAt(model)
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = count = 0
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch][:, positions]
        logits = forward(xb, positions).to(loss_dtype)  # [b, n_pos, vocab]
        mask = yb != IGNORE
        lp = logits.log_softmax(-1)
        picked = lp.gather(-1, yb.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        total_loss -= picked[mask].double().sum()
        correct += (logits.argmax(-1)[mask] == yb[mask]).sum().item()
        count += mask.sum().item()
    return (total_loss / max(count, 1)).item(), correct / max(count, 1)


def train_loop(store: RunStore, run_id: str, config: RunConfig, data: EncodedTask,
               model: torch.nn.Module, *, progress: bool = True, resume: bool = False,
               ctx: DistContext = SINGLE) -> TrainResult:
    """Train ``model`` on ``data`` per ``config.train``, recording metrics and checkpoints
    under ``run_id``; the caller holds the run's lifecycle (:meth:`RunStore.lifecycle`), which
    records the status and the summary (this returns it).

    Under torchrun (``ctx.world_size > 1``) every rank runs this loop on its shard of each
    batch; only rank 0 evaluates and writes metrics and checkpoints.
    """
    cfg = config.train
    device = resolve_device(cfg)
    if device.type == "cuda" and ctx.world_size > 1:
        device = torch.device("cuda", ctx.local_rank)
    model.to(device).train()
    loss_dtype = torch.float64 if cfg.loss_dtype == "float64" else torch.float32
    positions = data.label_positions().to(device)
    train_x, train_y = data.train_x.to(device), data.train_y.to(device)
    test_x, test_y = data.test_x.to(device), data.test_y.to(device)
    logits_module = LogitsAt(model)
    sharded = ctx.world_size > 1 and cfg.parallel == "fsdp"
    if sharded:  # before the optimizer, which must hold the sharded parameters
        shard_fully(logits_module)
    # the fused kernel updates all tensors in one pass: 0.35 vs 1.8 ms per step on the
    # grokking model (CPU), where the per-tensor loop is a few percent of the whole step
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(cfg.beta1, cfg.beta2),
                                  fused=device.type in ("cpu", "cuda") and not sharded)
    start = 0
    elapsed_before = 0.0
    if resume:
        start, elapsed_before = ckpt.restore(store, run_id, model, optimizer,
                                             prune=ctx.is_main)
        if ctx.is_main:
            store.truncate_metrics(run_id, start)
    forward = wrap(logits_module, ctx, device)
    batches = _Batches(train_x.shape[0], cfg.batch_size, cfg.seed)
    all_rows = torch.arange(train_x.shape[0], device=device)
    save_at = checkpoint_steps(cfg)
    bar = _progress_bar(cfg.steps, start, progress and ctx.is_main)
    t0 = time.perf_counter()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (
        cfg.precision == "bf16" and device.type == "cuda") else contextlib.nullcontext()
    for step in range(start, cfg.steps):
        idx = batches(step)
        n_labels = None
        if ctx.world_size > 1:
            idx = all_rows if idx is None else idx.to(device)
            n_labels = (train_y[idx][:, positions] != IGNORE).sum()
            idx = shard(idx, ctx)
        xb, yb = (train_x, train_y) if idx is None else (train_x[idx], train_y[idx])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        with autocast:
            logits = forward(xb, positions)  # [batch, n_pos, vocab]
        loss = _loss(logits, yb[:, positions], loss_dtype, n_labels, ctx.world_size)
        if not torch.isfinite(loss):
            raise TrainingFailed(f"loss became {loss.item()} at step {step}; try a lower lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        done = step + 1
        # sharded weights are gathered collectively, so under FSDP every rank evaluates and
        # takes part in saving; otherwise rank 0 alone does. Metrics are logged before the
        # checkpoint, so a resume never leaves a gap in the curves.
        evaluating = done % cfg.eval_every == 0 or done == cfg.steps
        if evaluating and (ctx.is_main or sharded):
            model.eval()
            metrics = _eval_metrics(logits_module, train_x, train_y, test_x, test_y, positions)
            model.train()
            metrics["lr"] = lr_at(step, cfg)
            metrics["elapsed_seconds"] = elapsed_before + time.perf_counter() - t0
            if ctx.is_main:
                store.log_metrics(run_id, done, metrics)
            if bar is not None:
                bar.set_postfix(loss=f"{metrics['train_loss']:.3g}",
                                acc=f"{metrics['train_acc']:.3f}",
                                test_acc=f"{metrics['test_acc']:.3f}", refresh=False)
        if done in save_at and (ctx.is_main or sharded):
            ckpt.save(store, run_id, config, model, optimizer, done,
                      elapsed_before + time.perf_counter() - t0, data, write=ctx.is_main)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    barrier(ctx)
    wall = elapsed_before + time.perf_counter() - t0
    model.eval()
    final = _eval_metrics(logits_module, train_x, train_y, test_x, test_y, positions)
    state = {k: full_tensor(v).detach().cpu() for k, v in model.state_dict().items()}
    result = TrainResult(run_id=run_id, task=config.task, steps=cfg.steps, wall_seconds=wall,
                         checkpoint=str(store.layout(run_id).checkpoint(cfg.steps)),
                         weights_sha256=weights_sha256(state), **final)
    return result


def _eval_metrics(model, train_x, train_y, test_x, test_y, positions) -> dict[str, float]:
    train_loss, train_acc = evaluate(model, train_x, train_y, positions)
    test_loss, test_acc = evaluate(model, test_x, test_y, positions)
    return {"train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test_loss, "test_acc": test_acc}


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, file=sys.stderr, unit="step", dynamic_ncols=True,
                mininterval=0.5)
