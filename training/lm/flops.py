"""Training FLOPs per token, device peaks, model FLOPs utilisation (MFU) and the memory a
run needs.

FLOPs per token (PaLM, Chowdhery et al. 2022, appendix B): 6 N for the matmuls of forward and
backward over the N non-embedding parameters (the output projection counts: it is a matmul),
plus 12 L d T for attention scores and values at sequence length T. MFU = tokens/s x FLOPs per
token / (peak x devices). Peaks are dense bf16 tensor-core figures: A100 312, H100 SXM 989,
H200 989 TFLOP/s; on a CPU the peak is measured (a float32 matmul) or given (``peak_tflops``).
"""

from __future__ import annotations

import functools
import time

import torch

from training.lm.config import LMModelConfig, PretrainConfig
from workbench.errors import UserError
from workbench.memory import available_memory_bytes

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


def flops_per_token(cfg: LMModelConfig, seq_len: int) -> float:
    matmul_params = cfg.n_params(embeddings=False) + cfg.vocab_size * cfg.d_model
    return 6.0 * matmul_params + 12.0 * cfg.n_layers * cfg.d_model * seq_len


@functools.lru_cache(maxsize=None)
def measured_cpu_tflops(size: int = 1024, seconds: float = 0.3) -> float:
    """Sustained float32 matmul TFLOP/s of this process's threads (a stand-in CPU peak)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * size ** 3 * n / (time.perf_counter() - t0) / 1e12


def device_info(device: torch.device) -> dict:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"device": "cuda", "name": props.name,
                "memory_gib": round(props.total_memory / 2 ** 30, 1)}
    return {"device": "cpu", "name": "CPU", "threads": torch.get_num_threads()}


def peak_tflops(device: torch.device, given: float = 0.0) -> tuple[float, str]:
    """(peak TFLOP/s per device, where the figure comes from)."""
    if given:
        return given, "given"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_TFLOPS.items():
            if key in name:
                return value, f"{key} dense bf16"
        return 0.0, f"unknown GPU {name!r}: set peak_tflops"
    return measured_cpu_tflops(), "measured float32 matmul"


def mfu(tokens_per_second: float, flops_token: float, peak: float, devices: int) -> float:
    return tokens_per_second * flops_token / (peak * 1e12 * devices) if peak else 0.0


def estimate_bytes(cfg: LMModelConfig, train: PretrainConfig, seq_len: int, micro: int,
                   world_size: int, bf16: bool) -> int:
    """Bytes per device: float32 weights, gradients and two AdamW moments (16 B/parameter,
    divided over ranks under FSDP) plus activations (Korthikanti et al. 2022: about
    s b d (34 + 5 a s / d) bytes per layer in 16-bit, doubled in float32; a checkpointed
    layer keeps only its input), plus the logits."""
    params = cfg.n_params()
    state = 16 * params / (world_size if train.parallel == "fsdp" else 1)
    unit = 1 if bf16 else 2
    per_layer = seq_len * micro * cfg.d_model * (
        34 + 5 * cfg.n_heads * seq_len / cfg.d_model) * unit
    if train.activation_checkpointing:
        per_layer = seq_len * micro * cfg.d_model * 2 * unit
    logits = micro * seq_len * cfg.vocab_size * 4 * 3  # logits, float32 copy, gradient
    return int(state + cfg.n_layers * per_layer + logits)


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's free bytes, else the host's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return available_memory_bytes()


def check_memory(cfg: LMModelConfig, train: PretrainConfig, seq_len: int, micro: int,
                 world_size: int, device: torch.device, bf16: bool) -> int:
    """The estimate, or a ``UserError`` naming it when the device cannot hold it."""
    need = estimate_bytes(cfg, train, seq_len, micro, world_size, bf16)
    have = available_bytes(device)
    if need > have:
        hint = ("lower micro_batch_size, enable activation_checkpointing or shard with "
                "parallel=fsdp over more ranks")
        raise UserError(f"not enough memory for the model: about {need / 2 ** 30:.1f} GiB per "
                        f"device needed ({cfg.n_params() / 1e6:.1f}M parameters, micro-batch "
                        f"{micro} x {seq_len}), {have / 2 ** 30:.1f} GiB available on "
                        f"{device.type}; {hint}")
    return need
