"""Training configuration: the optimiser/schedule dataclass and the full run config
(resolved task parameters + model architecture + training), with ``key=value`` overrides
(parsed and coerced by :mod:`workbench.settings`, the one parser of every face)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

from workbench.errors import UserError, check_choice
from workbench.files import read_mapping_file
from workbench.models import ModelConfig
from workbench.settings import apply_section_overrides, parse_settings


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimiser, schedule, evaluation and checkpointing of one training run."""

    steps: int = 1000
    batch_size: int = 0  # 0: full batch
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup_steps: int = 10
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    grad_clip: float = 0.0  # 0: no clipping
    loss_dtype: Literal["float32", "float64"] = "float32"
    eval_every: int = 100
    checkpoint_every: int = 1000
    log_checkpoints: int = 0  # extra log-spaced checkpoints for training-dynamics analysis
    seed: int = 0
    layout: Literal["auto", "aligned", "seq2seq"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast on CUDA
    parallel: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: replicate, or shard (FSDP2)

    def __post_init__(self):
        positive = ("steps", "eval_every", "checkpoint_every")
        non_negative = ("batch_size", "warmup_steps", "log_checkpoints", "seed")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise UserError(f"lr must be positive, got {self.lr!r}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise UserError(f"weight_decay and grad_clip must be >= 0, got "
                            f"{self.weight_decay!r} and {self.grad_clip!r}")
        for name in ("beta1", "beta2", "min_lr_ratio"):
            if not 0 <= getattr(self, name) < 1 + (name == "min_lr_ratio"):
                raise UserError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("schedule", "loss_dtype", "layout", "device", "precision", "parallel"):
            allowed = typing.get_args(typing.get_type_hints(TrainConfig)[name])
            check_choice(getattr(self, name), name, allowed)


# Model fields derived from the task's data; setting them by hand would be silently ignored.
DERIVED_MODEL_FIELDS = ("d_vocab", "d_vocab_out", "n_ctx")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that defines a training run; saved as ``config.json`` with the run and in
    its store row, so resuming and analysing it never depend on the code's defaults."""

    task: str
    task_params: dict  # every task parameter, resolved (``Task.params()``)
    model: ModelConfig
    train: TrainConfig
    data_path: str | None = None  # custom JSONL task
    task_facts: dict = dataclasses.field(default_factory=dict)  # ``Task.facts()``
    migration: str | None = None  # set on runs whose config a store migration resolved

    def to_dict(self) -> dict:
        out = {"task": self.task, "task_params": dict(self.task_params),
               "model": self.model.to_dict(), "train": dataclasses.asdict(self.train),
               "data_path": self.data_path, "task_facts": dict(self.task_facts)}
        if self.migration is not None:
            out["migration"] = self.migration
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(task=d["task"], task_params=dict(d["task_params"]),
                   model=ModelConfig.from_dict(d["model"]),
                   train=TrainConfig(**d["train"]), data_path=d.get("data_path"),
                   task_facts=dict(d.get("task_facts") or {}), migration=d.get("migration"))


def _fields(cls) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def apply_overrides(sections: dict[str, dict], overrides: dict[str, typing.Any],
                    task_fields: dict[str, typing.Any]) -> None:
    """Apply ``key=value`` overrides in place to ``{"task": …, "model": …, "train": …}``.

    A key is a field name of exactly one section (``lr``, ``p``, ``d_model``) or a dotted
    ``section.field``; unknown, ambiguous or derived keys and badly typed values raise.
    """
    kinds = {"task": task_fields, "model": _fields(ModelConfig), "train": _fields(TrainConfig)}
    apply_section_overrides(sections, overrides, kinds, derived=DERIVED_MODEL_FIELDS,
                            derived_from="the task's vocabulary and length")


# The one key=value parser lives in the core; this name stays for training.lm's CLI.
parse_set_args = parse_settings


def read_config_file(path: str) -> dict:
    """A JSON or YAML file of overrides (flat, or nested under task/model/train)."""
    data = read_mapping_file(path, "config file")
    flat = {}
    for key, value in data.items():
        if key in ("task", "model", "train") and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
