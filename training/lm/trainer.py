"""The pretraining loop: gradient accumulation over micro-batches, warm-up + cosine / WSD /
constant schedule, AdamW (fused on CUDA), gradient clipping, bf16 autocast, optional
``torch.compile`` and activation checkpointing, DDP or FSDP2 (one unit per block plus the
root), metrics to the run store (train / validation loss, lr, tokens/s, MFU, GPU memory) and a
checkpoint series (every N steps plus log-spaced early ones) with exact resume.

Determinism: initialisation is seeded, batches are a function of (seed, step), and there is no
dropout; so on CPU a run resumed from a checkpoint ends on bit-identical weights, and a run
on another world size sees the same global batches (equal up to float reduction order).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from training import schedule
from training.distributed import SINGLE, DistContext, barrier, full_tensor, wrap
from training.lm import flops, series
from training.lm.config import LMModelConfig, PretrainConfig
from training.lm.shards import Sampler
from training.trainer import TrainingFailed, checkpoint_steps
from workbench.checkpoint import weights_sha256
from workbench.store import RunStore


@dataclass(frozen=True)
class PretrainResult:
    run_id: str
    steps: int
    tokens: int
    wall_seconds: float
    train_loss: float
    val_loss: float | None
    tokens_per_second: float
    mfu: float
    output_dir: str
    checkpoints: list[int]
    weights_sha256: str
    world_size: int
    device: str
    status: str = "completed"

    def to_json(self) -> dict:
        return dict(self.__dict__)


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Learning rate of update ``step`` (0-based): :func:`training.schedule.lr_at` on the
    run's warm-up, schedule, floor and WSD decay fraction."""
    return schedule.lr_at(step, lr=cfg.lr, steps=cfg.steps, warmup_steps=cfg.warmup_steps,
                          schedule=cfg.schedule, min_lr_ratio=cfg.min_lr_ratio,
                          decay_frac=cfg.decay_frac)


def resolve_device(cfg: PretrainConfig, ctx: DistContext) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingFailed("device=cuda was requested but CUDA is not available")
        return torch.device("cuda", ctx.local_rank)
    return torch.device("cpu")


def uses_bf16(cfg: PretrainConfig, device: torch.device) -> bool:
    return cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")


def shard_per_block(model: torch.nn.Module) -> None:
    """FSDP2: each block is its own unit (its parameters gathered just before it runs and
    freed after), then the root holds embeddings, final norm and head; so no device ever
    holds more than one block's full weights beyond its shards."""
    from torch.distributed.fsdp import fully_shard

    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (and embeddings), none on biases and norm weights."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _all_mean(value: torch.Tensor, ctx: DistContext) -> float:
    if ctx.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= ctx.world_size
    return float(value)


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # logits [batch, pos, vocab] (float32 for the softmax), targets [batch, pos]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def validation_loss(model, batches, device, autocast) -> float | None:
    if not batches:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for rows in batches:
        rows = rows.to(device)  # [batch, seq_len + 1]
        with autocast():
            logits = model(rows[:, :-1])
        total += float(_loss(logits, rows[:, 1:])) * rows.shape[0]
        count += rows.shape[0]
    model.train(was_training)
    return total / count


def train_loop(store: RunStore, run_id: str, model_cfg: LMModelConfig, cfg: PretrainConfig,
               sampler: Sampler, val_batches, tokenizer, meta: dict, *, resume: bool = False,
               progress: bool = True, ctx: DistContext = SINGLE,
               model: torch.nn.Module | None = None) -> PretrainResult:
    """Train per ``cfg`` on ``sampler``'s batches, recording metrics and checkpoints under
    ``run_id``; the caller holds the run's lifecycle (status and summary). Under torchrun
    every rank runs this loop; rank 0 alone writes to the store."""
    from training.lm.model import build_model

    device = resolve_device(cfg, ctx)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = (model or build_model(model_cfg)).to(device).train()
    model.activation_checkpointing = cfg.activation_checkpointing
    sharded = ctx.world_size > 1 and cfg.parallel == "fsdp"
    if sharded:  # before the optimizer, which must hold the sharded parameters
        shard_per_block(model)
    # fused on CUDA only: on CPU the fused kernel took 150-250 ms per step on a 1M-parameter
    # model against 10 ms for the default (foreach) implementation (benchmarks/pretrain_speed)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), fused=fused)
    start, elapsed_before = 0, 0.0
    if resume:
        start, elapsed_before = series.restore(store, run_id, model, optimizer,
                                               prune=ctx.is_main)
        if ctx.is_main:
            store.truncate_metrics(run_id, start)
    forward = wrap(model, ctx, device)
    if cfg.compile:
        forward = torch.compile(forward)
    bf16 = uses_bf16(cfg, device)

    def autocast():
        return (torch.autocast(device.type, dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())

    plan, seq_len = sampler.plan, sampler.seq_len
    tokens_per_step = plan.batch_size * seq_len
    flops_token = flops.flops_per_token(model_cfg, seq_len)
    peak, peak_source = flops.peak_tflops(device, cfg.peak_tflops)
    if ctx.is_main:  # what the page and widget show beside the curves
        store.put_result(run_id, "pretrain", "device", {
            **flops.device_info(device), "world_size": ctx.world_size, "parallel":
            cfg.parallel if ctx.world_size > 1 else "none", "bf16": uses_bf16(cfg, device),
            "compile": cfg.compile, "peak_tflops": peak, "peak_source": peak_source,
            "flops_per_token": flops_token, "n_params": model_cfg.n_params()})
    save_at = checkpoint_steps(cfg)
    bar = _progress_bar(cfg.steps, start, progress and ctx.is_main)
    t0 = time.perf_counter()
    window_t, window_steps = t0, 0
    train_loss = val_loss = None
    tok_s = mfu = 0.0
    for step in range(start, cfg.steps):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=device)
        for micro in range(plan.accum_steps):
            x, y = sampler.micro_batch(step, micro)  # [micro_batch, seq_len]
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            last = micro == plan.accum_steps - 1
            sync = _grad_sync(forward, model, last, sharded)
            with sync:  # DDP reads it in forward and acts on it in backward
                with autocast():
                    logits = forward(x)  # [micro_batch, seq_len, vocab]
                loss = _loss(logits, y) / plan.accum_steps
                loss.backward()
            step_loss += loss.detach()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        window_steps += 1
        logging = done % cfg.log_every == 0 or done == cfg.steps
        evaluating = done % cfg.eval_every == 0 or done == cfg.steps
        if logging or evaluating:
            train_loss = _all_mean(step_loss, ctx)
            if not math.isfinite(train_loss):
                raise TrainingFailed(f"loss became {train_loss} at step {done}; "
                                     "try a lower lr")
            now = time.perf_counter()
            tok_s = tokens_per_step * window_steps / max(now - window_t, 1e-9)
            mfu = flops.mfu(tok_s, flops_token, peak, ctx.world_size)
            window_t, window_steps = now, 0
            metrics = {"train_loss": train_loss, "lr": lr, "tokens_per_second": tok_s,
                       "mfu": mfu, "tokens": done * tokens_per_step,
                       "elapsed_seconds": elapsed_before + now - t0}
            if device.type == "cuda":
                metrics["gpu_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
            if evaluating:
                val_loss = validation_loss(model, val_batches, device, autocast)
                if val_loss is not None:
                    metrics["val_loss"] = val_loss
            if ctx.is_main:
                store.log_metrics(run_id, done, metrics)
            if bar is not None:
                bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tok_s:,.0f}",
                                mfu=f"{mfu:.1%}", refresh=False)
            window_t = time.perf_counter()  # evaluation time is not training throughput
        if done in save_at:
            series.save(store, run_id, model, optimizer, done,
                        elapsed_before + time.perf_counter() - t0, tokenizer, meta,
                        write=ctx.is_main)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    barrier(ctx)
    wall = elapsed_before + time.perf_counter() - t0
    state = {k: full_tensor(v).detach().cpu() for k, v in model.state_dict().items()}
    result = PretrainResult(
        run_id=run_id, steps=cfg.steps, tokens=cfg.steps * tokens_per_step, wall_seconds=wall,
        train_loss=train_loss if train_loss is not None else float("nan"), val_loss=val_loss,
        tokens_per_second=tok_s, mfu=mfu,
        output_dir=str(series.checkpoint_dir(store, run_id, cfg.steps)),
        checkpoints=sorted(save_at), weights_sha256=weights_sha256(state),
        world_size=ctx.world_size, device=device.type)
    return result


def _grad_sync(forward, model, last: bool, sharded: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of an update."""
    if sharded:
        model.set_requires_gradient_sync(last)
        return contextlib.nullcontext()
    target = getattr(forward, "_orig_mod", forward)
    if not last and hasattr(target, "no_sync"):
        return target.no_sync()
    return contextlib.nullcontext()


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, file=sys.stderr, unit="step", dynamic_ncols=True,
                mininterval=0.5)
