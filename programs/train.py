"""Training loop of a Transformer Program: Adam at a constant rate, cross-entropy at labelled
positions (averaged per token, or per sequence as in the original code), Gumbel temperature
annealed geometrically per step, evaluation of the *discrete* model (Friedman et al., 2023,
section 4).

The loop reports through an optional ``on_epoch(epoch, metrics) -> bool`` callback (return
``False`` to stop), so the run store / job system wires in without this module importing it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from programs.config import ProgramConfig
from programs.data import IGNORE, ProgramShape, encode, shape_for
from programs.discrete import DiscreteProgram, run_discrete
from programs.model import ProgramModel
from training.tasks import TaskData


@dataclass(frozen=True)
class TrainResult:
    model: ProgramModel
    program: DiscreteProgram
    test_acc: float  # per-token accuracy of the discrete model on the test split
    train_acc: float
    wall_seconds: float
    seconds_per_epoch: float
    epochs_run: int
    final_loss: float


def temperature(cfg: ProgramConfig, step: int, total: int) -> float:
    """Geometric schedule from ``temperature_start`` (step 0) to ``temperature_end`` (last)."""
    frac = step / max(total - 1, 1)
    return cfg.temperature_start * (cfg.temperature_end / cfg.temperature_start) ** frac


def accuracy(program: DiscreteProgram, x: torch.Tensor, y: torch.Tensor) -> float:
    """Per-token accuracy of the discrete program at labelled positions."""
    if len(x) == 0:
        return float("nan")
    pred = run_discrete(program, x).predictions
    mask = y != IGNORE
    return (pred[mask] == y[mask]).float().mean().item() if mask.any() else float("nan")


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Ask glibc malloc to reuse freed blocks instead of returning them to the kernel.

    A training step allocates and frees tens of MB in multi-MB tensors (PyTorch's CPU allocator
    does not cache); with glibc's defaults many come from fresh ``mmap`` pages, so every step
    pays ~4k page faults (~10 ms of system time on the reference machine). Raising the mmap
    and trim thresholds keeps those blocks in the heap. Process-wide and harmless elsewhere
    (freed memory stays reserved for reuse); a no-op off glibc. Returns whether it applied.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1  # the largest glibc accepts on 64-bit
    ok &= mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    ok &= mallopt(_M_TOP_PAD, 64 << 20) == 1
    return bool(ok)


def make_optimizer(model: torch.nn.Module, cfg: ProgramConfig) -> torch.optim.Optimizer:
    """Adam at the config's constant rate (shared with the benchmark).

    Fused: one kernel over all parameters instead of ~10 small ops per tensor, about 1.3 ms of
    a ~45 ms sort step on one CPU thread."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)


def sequence_weights(y: torch.Tensor) -> torch.Tensor:
    """Per-token loss weights ``[pos * batch]`` (batch innermost) for ``loss_mean="sequence"``:
    each labelled token weighs 1 / (its sequence's labelled tokens x labelled sequences)."""
    labelled = (y != IGNORE).float()  # [batch, pos]
    per_seq = labelled.sum(1, keepdim=True)  # [batch, 1]
    n_seqs = (per_seq > 0).sum().clamp(min=1)
    return (labelled / per_seq.clamp(min=1) / n_seqs).T.reshape(-1)


def make_step(model: ProgramModel, opt: torch.optim.Optimizer):
    """One optimisation step ``step(x, y, tau) -> loss tensor`` (shared with the benchmark)."""
    keep_freed_memory()
    per_sequence = model.cfg.loss_mean == "sequence"

    def step(x: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
        logits = model.forward_flat(x, tau)
        # logits: [d_out, pos * batch] (batch innermost), labels in the same order. As one
        # [1, d_out, N] "image" the softmax runs along contiguous memory and the gradient
        # reaches the unembedding matmuls contiguous: ~5x faster loss than on logits.T
        labels = y.T.reshape(1, -1)
        if per_sequence:
            losses = F.cross_entropy(logits[None], labels, ignore_index=IGNORE,
                                     reduction="none")  # [1, pos * batch], 0 where unlabelled
            loss = losses[0] @ sequence_weights(y)
        else:
            loss = F.cross_entropy(logits[None], labels, ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def train_program(data: TaskData, cfg: ProgramConfig,
                  on_epoch: Callable[[int, dict], bool] | None = None) -> TrainResult:
    """Train on ``data.train`` and evaluate the discrete model on train and test."""
    start = time.perf_counter()
    shape: ProgramShape = shape_for(data, cfg.var_width, cfg.mask_padding)
    x_train, y_train = encode(data.train, shape, data.pad_token)
    x_test, y_test = encode(data.test, shape, data.pad_token)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ProgramModel(cfg, shape)
    opt = make_optimizer(model, cfg)
    step_fn = make_step(model, opt)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    step, loss_value, epochs_run = 0, float("nan"), 0
    train_start = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        epoch_loss = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            loss = step_fn(x_train[idx], y_train[idx], temperature(cfg, step, total))
            epoch_loss += loss.item()
            step += 1
        loss_value = epoch_loss / steps_per_epoch
        epochs_run = epoch + 1
        if on_epoch is not None:
            metrics = {"loss": loss_value, "temperature": temperature(cfg, step - 1, total)}
            if on_epoch(epoch, metrics) is False:
                break
    train_seconds = time.perf_counter() - train_start
    program = model.discretize()
    return TrainResult(model=model, program=program,
                       test_acc=accuracy(program, x_test, y_test),
                       train_acc=accuracy(program, x_train, y_train),
                       wall_seconds=time.perf_counter() - start,
                       seconds_per_epoch=train_seconds / max(epochs_run, 1),
                       epochs_run=epochs_run, final_loss=loss_value)
