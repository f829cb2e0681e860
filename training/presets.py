"""Named presets per task: overrides of task parameters, model architecture and training.

Every task has ``default`` and ``tiny`` (trains in seconds, for tests and smoke checks). The
modular tasks also have ``grokking`` — exactly the reference recipe of Nanda et al. (2023) in
``shared/reference/fourier.md`` — and ``demo``, the same recipe on a smaller p for a run of a
few minutes on two CPU cores.
"""

from __future__ import annotations

from workbench.errors import UserError

# The reference grokking model: 1 layer, d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LN.
_GROKKING_MODEL = {"n_layers": 1, "d_model": 128, "n_heads": 4, "d_head": 32, "d_mlp": 512,
                   "act_fn": "relu", "normalization_type": None}
# Full-batch AdamW, lr 1e-3, wd 1.0, betas (0.9, 0.98), 10-step warm-up, float64 loss.
_GROKKING_TRAIN = {"batch_size": 0, "lr": 1e-3, "weight_decay": 1.0, "beta1": 0.9,
                   "beta2": 0.98, "warmup_steps": 10, "schedule": "constant",
                   "loss_dtype": "float64"}

_MODULAR = {
    "default": {"task": {"p": 113, "frac_train": 0.3}, "model": _GROKKING_MODEL,
                "train": {**_GROKKING_TRAIN, "steps": 40_000, "eval_every": 100,
                          "checkpoint_every": 1000, "log_checkpoints": 20}},
    "grokking": {"task": {"p": 113, "frac_train": 0.3}, "model": _GROKKING_MODEL,
                 "train": {**_GROKKING_TRAIN, "steps": 40_000, "eval_every": 100,
                           "checkpoint_every": 1000, "log_checkpoints": 20}},
    "demo": {"task": {"p": 59, "frac_train": 0.5}, "model": _GROKKING_MODEL,
             "train": {**_GROKKING_TRAIN, "steps": 3000, "eval_every": 50,
                       "checkpoint_every": 250, "log_checkpoints": 10}},
    "tiny": {"task": {"p": 13, "frac_train": 0.8},
             "model": {**_GROKKING_MODEL, "d_model": 32, "n_heads": 2, "d_head": 16,
                       "d_mlp": 64},
             "train": {**_GROKKING_TRAIN, "lr": 1e-2, "weight_decay": 0.1, "steps": 150,
                       "eval_every": 25, "checkpoint_every": 50}},
}

_SEQUENCE_MODEL = {"n_layers": 2, "d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256,
                   "act_fn": "relu", "normalization_type": "LN"}
_SEQUENCE_TRAIN = {"batch_size": 256, "lr": 1e-3, "weight_decay": 0.01, "warmup_steps": 100,
                   "schedule": "cosine", "steps": 4000, "eval_every": 200,
                   "checkpoint_every": 1000, "grad_clip": 1.0}
_SEQUENCE = {
    "default": {"task": {}, "model": _SEQUENCE_MODEL, "train": _SEQUENCE_TRAIN},
    "tiny": {"task": {"n_samples": 2000}, "model": {**_SEQUENCE_MODEL, "d_model": 32,
                                                     "d_head": 8, "d_mlp": 64},
             "train": {**_SEQUENCE_TRAIN, "steps": 200, "warmup_steps": 20, "lr": 3e-3,
                       "eval_every": 50, "checkpoint_every": 100}},
}

_PARITY = {
    "default": {"task": {"n": 20, "k": 3, "n_train": 20_000, "n_test": 2000},
                "model": {**_SEQUENCE_MODEL, "n_layers": 1, "d_model": 128, "d_head": 32,
                          "d_mlp": 512},
                "train": {**_SEQUENCE_TRAIN, "batch_size": 64, "weight_decay": 0.01,
                          "schedule": "constant", "steps": 20_000, "eval_every": 250}},
    "tiny": {"task": {"n": 6, "k": 2, "n_train": 48, "n_test": 16},
             "model": {**_SEQUENCE_MODEL, "n_layers": 1, "d_model": 32, "d_head": 8,
                       "d_mlp": 128},
             "train": {**_SEQUENCE_TRAIN, "batch_size": 0, "lr": 3e-3, "warmup_steps": 10,
                       "steps": 300, "eval_every": 50, "checkpoint_every": 100}},
}

_GROUP = {
    "default": {"task": {"group": "S5", "frac_train": 0.4}, "model": _GROKKING_MODEL,
                "train": {**_GROKKING_TRAIN, "steps": 30_000, "eval_every": 200,
                          "checkpoint_every": 1000, "log_checkpoints": 20}},
    "tiny": {"task": {"group": "S3", "frac_train": 0.8},
             "model": {**_GROKKING_MODEL, "d_model": 32, "n_heads": 2, "d_head": 16,
                       "d_mlp": 64},
             "train": {**_GROKKING_TRAIN, "lr": 1e-2, "weight_decay": 0.1, "steps": 150,
                       "eval_every": 25, "checkpoint_every": 50}},
}

_BY_TASK = {
    "modular-addition": _MODULAR, "modular-subtraction": _MODULAR,
    "modular-multiplication": _MODULAR, "sparse-parity": _PARITY, "group-composition": _GROUP,
}
_CAUSAL_SEQUENCE_TASKS = ("dyck-1", "dyck-2", "induction")
# Custom JSONL tasks and the Transformer Programs algorithmic tasks use the sequence presets.


def presets_for(task: str) -> dict[str, dict]:
    if task in _BY_TASK:
        return _BY_TASK[task]
    if task in _CAUSAL_SEQUENCE_TASKS or task == "custom":
        return _SEQUENCE
    # Non-causal sequence tasks (reverse, sort, ...): an encoder-style (bidirectional) model
    # reads the whole input and labels every position, the aligned layout.
    return {name: {**p, "model": {**p["model"], "attention_dir": "bidirectional"}}
            for name, p in _SEQUENCE.items()}


def get_preset(task: str, name: str) -> dict:
    presets = presets_for(task)
    if name not in presets:
        raise UserError(f"task {task!r} has no preset {name!r}; presets: "
                        f"{', '.join(sorted(presets))}")
    preset = presets[name]
    return {k: dict(preset.get(k, {})) for k in ("task", "model", "train")}
