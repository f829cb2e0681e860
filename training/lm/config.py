"""Configuration of a language-model pretraining run: the decoder architecture
(:class:`LMModelConfig`), the optimiser / schedule / parallelism (:class:`PretrainConfig`),
the presets, and ``--set key=value`` overrides resolved against both.

Only two architecture families exist, because each must export to a Hugging Face class by a
rename: GPT-2 (learned positions, LayerNorm, GELU MLP, biases) and Llama (rotary positions,
RMSNorm, SwiGLU MLP, no biases). Tied or untied embeddings work in both.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

from workbench.errors import UserError, check_choice
from workbench.files import read_mapping_file
from workbench.settings import apply_section_overrides

FAMILIES = {
    # (positions, norm, mlp, bias) -> Hugging Face family
    ("learned", "layernorm", "gelu", True): "gpt2",
    ("rotary", "rmsnorm", "swiglu", False): "llama",
}


@dataclass(frozen=True, kw_only=True)
class LMModelConfig:
    """A decoder-only transformer; saved with every checkpoint (and as its HF config.json)."""

    vocab_size: int = 512  # derived from the data's tokenizer (padded to vocab_multiple)
    n_ctx: int = 128
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    positions: Literal["learned", "rotary"] = "learned"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    mlp: Literal["gelu", "swiglu"] = "gelu"
    bias: bool = True
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    init_std: float = 0.02
    init_seed: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "n_ctx", "n_layers", "d_model", "n_heads", "d_mlp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"model.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise UserError(f"model.d_model ({self.d_model}) must be divisible by "
                            f"model.n_heads ({self.n_heads})")
        if self.positions == "rotary" and self.d_head % 2:
            raise UserError(f"rotary positions need an even head size, got {self.d_head}")
        for name in ("positions", "norm", "mlp"):
            check_choice(getattr(self, name), f"model.{name}",
                         typing.get_args(typing.get_type_hints(LMModelConfig)[name]))
        if (self.positions, self.norm, self.mlp, self.bias) not in FAMILIES:
            raise UserError(
                f"model positions={self.positions} norm={self.norm} mlp={self.mlp} "
                f"bias={self.bias} matches no Hugging Face architecture: use GPT-2 style "
                "(learned, layernorm, gelu, bias=true) or Llama style "
                "(rotary, rmsnorm, swiglu, bias=false)")

    @property
    def family(self) -> str:
        return FAMILIES[(self.positions, self.norm, self.mlp, self.bias)]

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def n_params(self, *, embeddings: bool = True) -> int:
        d, f = self.d_model, self.d_mlp
        per_block = 4 * d * d + (3 if self.mlp == "swiglu" else 2) * d * f
        if self.bias:
            per_block += 3 * d + d + f + d
        per_block += (4 if self.norm == "layernorm" else 2) * d  # two norms per block
        total = self.n_layers * per_block + (2 if self.norm == "layernorm" else 1) * d
        if embeddings:
            total += self.vocab_size * d * (1 if self.tie_embeddings else 2)
            if self.positions == "learned":
                total += self.n_ctx * d
        return total

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LMModelConfig":
        return cls(**_known(cls, d, "model"))


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Optimiser, schedule, batch, precision, parallelism and checkpointing of one run."""

    steps: int = 200
    batch_size: int = 16  # global batch, in sequences, the same whatever the world size
    micro_batch_size: int = 0  # sequences per rank per forward; 0: batch_size / world size
    seq_len: int = 0  # 0: the model's n_ctx
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    decay_frac: float = 0.2  # WSD: the final fraction of steps that decays linearly
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0: no clipping
    log_every: int = 10
    eval_every: int = 50
    eval_batches: int = 4
    checkpoint_every: int = 100
    log_checkpoints: int = 6  # extra log-spaced checkpoints early in training
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA
    compile: bool = False
    activation_checkpointing: bool = False
    parallel: Literal["ddp", "fsdp"] = "ddp"  # fsdp: FSDP2, one unit per block + the root
    peak_tflops: float = 0.0  # device peak for MFU; 0: known GPU table, or measured on CPU
    vocab_multiple: int = 64  # pad the embedding to a multiple (faster matmuls)

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every",
                     "vocab_multiple"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("micro_batch_size", "seq_len", "warmup_steps", "eval_batches",
                     "log_checkpoints", "seed", "weight_decay", "grad_clip", "peak_tflops"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise UserError(f"lr must be positive, got {self.lr!r}")
        for name in ("beta1", "beta2", "min_lr_ratio", "decay_frac"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("schedule", "device", "precision", "parallel"):
            check_choice(getattr(self, name), name,
                         typing.get_args(typing.get_type_hints(PretrainConfig)[name]))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainConfig":
        return cls(**_known(cls, d, "train"))


def _known(cls, d: dict, section: str) -> dict:
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise UserError(f"unknown {section} config keys: {sorted(unknown)}")
    return dict(d)


_GPT2 = dict(positions="learned", norm="layernorm", mlp="gelu", bias=True)
_LLAMA = dict(positions="rotary", norm="rmsnorm", mlp="swiglu", bias=False,
              tie_embeddings=False)
PRESETS: dict[str, dict[str, dict]] = {
    # trains in about a minute on 2 CPU cores (the README example and the tests)
    "tiny": {"model": dict(_GPT2, n_ctx=64, n_layers=2, d_model=64, n_heads=4, d_mlp=256),
             "train": dict(steps=300, batch_size=16, lr=3e-3, warmup_steps=20)},
    "llama-tiny": {"model": dict(_LLAMA, n_ctx=64, n_layers=2, d_model=64, n_heads=4,
                                 d_mlp=176),
                   "train": dict(steps=300, batch_size=16, lr=3e-3, warmup_steps=20)},
    # GPT-2 small (124M with the GPT-2 vocabulary): nanoGPT / llm.c's recipe on GPUs
    "gpt2-124m": {"model": dict(_GPT2, n_ctx=1024, n_layers=12, d_model=768, n_heads=12,
                                d_mlp=3072),
                  "train": dict(steps=5000, batch_size=512, micro_batch_size=16, lr=6e-4,
                                warmup_steps=700, weight_decay=0.1, eval_every=250,
                                checkpoint_every=1000, compile=True)},
    # a Llama-shaped model of the same size class
    "llama-124m": {"model": dict(_LLAMA, n_ctx=1024, n_layers=12, d_model=768, n_heads=12,
                                 d_mlp=2048),
                   "train": dict(steps=5000, batch_size=512, micro_batch_size=16, lr=6e-4,
                                 warmup_steps=700, eval_every=250, checkpoint_every=1000,
                                 compile=True)},
}
DERIVED = ("vocab_size",)


def preset_sections(name: str) -> dict[str, dict]:
    check_choice(name, "preset", sorted(PRESETS))
    return copy.deepcopy(PRESETS[name])


def apply_overrides(sections: dict[str, dict], overrides: dict) -> None:
    """Apply ``key=value`` overrides to ``{"model": …, "train": …}`` in place: a field name of
    one section (``lr``, ``d_model``) or ``section.field``; unknown keys raise."""
    kinds = {"model": typing.get_type_hints(LMModelConfig),
             "train": typing.get_type_hints(PretrainConfig)}
    apply_section_overrides(sections, overrides, kinds, derived=DERIVED,
                            derived_from="the data's tokenizer")


def read_config_file(path: str) -> dict:
    """A JSON or YAML file of overrides, flat or nested under ``model`` / ``train``."""
    flat = {}
    for key, value in read_mapping_file(path, "config file").items():
        if key in ("model", "train") and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
