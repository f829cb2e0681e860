"""Configuration of a Transformer Program run: architecture, training settings and presets.

``paper`` presets follow Table 1 of "Learning Transformer Programs" (Friedman et al., 2023):
layers / heads / MLPs per task, heads and MLPs split half categorical, half numerical; 250 epochs,
batch 512, Adam lr 0.05, Gumbel temperature 3.0 -> 0.01 (geometric), with the paper's task set-up
(:data:`PAPER_TASK_PARAMS`). ``tiny`` trains in seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from workbench.errors import UserError, check_choice
from workbench.settings import coerce, parse_settings, split_prefixed


NUM_MLP_FEATURES = ("tents", "linear")
LOSS_MEANS = ("token", "sequence")
ATTENTION_RELAXATIONS = ("scaled", "gumbel_log")


@dataclass(frozen=True, kw_only=True)
class ProgramConfig:
    """Architecture and training settings of a Transformer Program (saved with every run)."""

    n_layers: int = 3
    n_cat_heads: int = 4
    n_num_heads: int = 4
    n_cat_mlps: int = 2
    n_num_mlps: int = 2
    d_mlp: int = 64  # hidden width of every MLP
    var_width: int | None = None  # categorical cardinality k; None = max(input vocab, max_len)
    one_hot_embed: bool = True  # tokens enter as a frozen one-hot variable
    causal: bool = False  # attend only to positions <= the query
    # padding positions are never attention keys. Off, heads may select and count padding:
    # the length becomes countable (n_ctx - #PAD), but so does a shortcut that traps counting
    # tasks (hist) in a local optimum
    mask_padding: bool = True
    epochs: int = 250
    batch_size: int = 512
    lr: float = 0.05
    temperature_start: float = 3.0
    temperature_end: float = 0.01
    attn_scale: float = 10.0  # sharpness of the relaxed attention (hard model: argmax)
    # multiply attn_scale by 1/temperature once the temperature is below 1, so the relaxed
    # attention converges to the argmax model's instead of averaging over matches
    sharpen_attention: bool = True
    # how a categorical head's relaxed attention turns match scores into weights: "scaled"
    # (softmax at ``attn_scale``, above) or "gumbel_log" (the original code's: a
    # Gumbel-softmax at the annealed temperature over log scores / sqrt(k) plus a rank bias
    # -- nearly uniform over the keys while hot, so every predicate row gets a gradient)
    attention_relaxation: str = "scaled"
    # categorical heads score keys by the predicate row divided by its maximum (the preferred
    # key value scores 1), so matches beat the BOS default while predicates are soft; without
    # it, early attention goes to BOS and induction's two heads never find each other
    relative_predicate: bool = True
    # the same for numerical (counting) heads: each match counts 1 while the predicate is
    # still soft (off: a soft row spreads one unit over the key values)
    relative_count_predicate: bool = False
    # numerical heads sum a numerical variable they read like any input (the paper's model;
    # e.g. a sum of earlier counts) instead of always counting with ``ones``. Numerical MLPs
    # then read their inputs saturated at n_ctx (their tables cover 0..n_ctx)
    num_head_values: bool = False
    # what a numerical MLP's hidden layer sees of its two inputs: "tents" (one triangular
    # feature per integer 0..n_ctx: any table is one step away) or "linear" (the two numbers
    # themselves, as in the paper: comparisons like a > b take a few ReLUs and hold for
    # pairs seen rarely in training)
    num_mlp_features: str = "tents"
    # how the cross-entropy averages: "token" (every labelled token weighs the same) or
    # "sequence" (the original code's: the mean over each sequence's labelled tokens, then
    # over sequences -- a token of a short sequence weighs more)
    loss_mean: str = "token"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_mlp", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_cat_heads", "n_num_heads", "n_cat_mlps", "n_num_mlps"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.var_width is not None and self.var_width < 2:
            raise UserError(f"var_width must be >= 2, got {self.var_width!r}")
        if not (self.lr > 0 and self.temperature_start > 0 and self.temperature_end > 0):
            raise UserError("lr and temperatures must be positive, got "
                            f"lr={self.lr!r}, temperature {self.temperature_start!r} -> "
                            f"{self.temperature_end!r}")
        check_choice(self.num_mlp_features, "num_mlp_features", NUM_MLP_FEATURES)
        check_choice(self.loss_mean, "loss_mean", LOSS_MEANS)
        check_choice(self.attention_relaxation, "attention_relaxation", ATTENTION_RELAXATIONS)
        if not self.one_hot_embed:
            raise UserError("one_hot_embed=false (learned categorical token embedding) is not "
                            "supported yet; use one_hot_embed=true")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProgramConfig":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise UserError(f"unknown program config keys: {sorted(unknown)} (saved by a "
                            "different version?)")
        return cls(**data)

    def with_overrides(self, overrides: dict) -> "ProgramConfig":
        """A copy with ``key=value`` overrides (strings from ``--set`` are coerced)."""
        import typing

        hints = typing.get_type_hints(type(self))
        fields = {f.name for f in dataclasses.fields(self)}
        clean = {}
        for key, value in overrides.items():
            if key not in fields:
                raise UserError(f"unknown program setting {key!r}; settings: "
                                f"{', '.join(sorted(fields))}")
            clean[key] = coerce(value, hints[key], key)
        return dataclasses.replace(self, **clean)


def _paper(layers: int, heads: int, mlps: int, *, causal: bool = False,
           mask_padding: bool = True) -> ProgramConfig:
    return ProgramConfig(n_layers=layers, n_cat_heads=heads // 2, n_num_heads=heads - heads // 2,
                         n_cat_mlps=mlps // 2, n_num_mlps=mlps - mlps // 2, causal=causal,
                         mask_padding=mask_padding)


# Table 1 of the paper (layers / heads / MLPs), plus the in-context-learning task.
PAPER_PRESETS: dict[str, ProgramConfig] = {
    "reverse": _paper(3, 8, 2),
    "hist": _paper(1, 4, 2),
    "double-hist": _paper(3, 4, 2),
    "sort": _paper(3, 8, 4),
    "most-freq": _paper(3, 8, 4),
    "dyck-1": _paper(3, 8, 2, causal=True),
    "dyck-2": _paper(3, 4, 4, causal=True),
    # the paper's script trains induction for 500 epochs
    "induction": ProgramConfig(n_layers=2, n_cat_heads=1, n_num_heads=0, n_cat_mlps=0,
                               n_num_mlps=0, causal=True, epochs=500),
}

# The task set-up behind the paper's numbers: its "vocabulary 8" counts BOS, PAD (and EOS), so
# reverse and sort use 5 letters and an end marker, the counting tasks 6 letters, all drawn
# with uniform lengths and duplicates dropped (not spread evenly over lengths); most-freq
# labels the positions past the ranked tokens; Dyck strings are full length; induction keeps
# one number per letter and labels first occurrences. Explicit ``task.*`` settings win.
PAPER_TASK_PARAMS: dict[str, dict] = {
    "reverse": {"vocab_size": 5, "eos": True, "sampling": "paper"},
    "sort": {"vocab_size": 5, "eos": True, "sampling": "paper"},
    "hist": {"vocab_size": 6, "sampling": "paper"},
    "double-hist": {"vocab_size": 6, "sampling": "paper"},
    "most-freq": {"vocab_size": 6, "label_rest": True, "sampling": "paper"},
    "dyck-1": {"sampling": "paper"},
    "dyck-2": {"sampling": "paper"},
    "induction": {"fixed_pairs": True, "label_unseen": True, "query_rate": 0.5},
}

TINY = ProgramConfig(n_layers=2, n_cat_heads=2, n_num_heads=1, n_cat_mlps=1, n_num_mlps=1,
                     d_mlp=32, epochs=30, batch_size=256)

PRESETS = ("paper", "tiny")


def split_settings(items) -> tuple[dict, dict]:
    """``--set key=value`` items (or settings text) -> (program settings, task parameters
    ``task.key=value``), parsed by the one parser, :func:`workbench.settings.parse_settings`."""
    return split_prefixed(parse_settings(items), "task.")


def preset_task_params(name: str, task: str, given: dict | None = None) -> dict:
    """The task parameters a preset trains ``task`` with: the paper's set-up under ``paper``
    (none for ``tiny`` or custom tasks), updated with the ``given`` ones."""
    base = PAPER_TASK_PARAMS.get(task, {}) if name == "paper" else {}
    return {**base, **(given or {})}


def preset(name: str, task: str) -> ProgramConfig:
    """The ``paper`` or ``tiny`` configuration for ``task`` (custom tasks use the sort setting)."""
    if name == "tiny":
        return TINY
    if name == "paper":
        return PAPER_PRESETS.get(task, PAPER_PRESETS["sort"])
    raise UserError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")


@dataclass(frozen=True, kw_only=True)
class ProgramRunConfig:
    """Everything that defines a program run, saved with it: the program settings, the preset
    they came from, the task's parameters (every one, resolved) or the custom data file."""

    task: str  # the registered task, or the label of a custom file
    preset: str
    program: ProgramConfig
    task_params: dict  # resolved (``Task.params()``); empty for custom data
    data: str | None = None  # custom aligned JSONL task
    migration: str | None = None  # set on runs whose config a store migration resolved

    def to_dict(self) -> dict:
        out = {"task": self.task, "preset": self.preset, "program": self.program.to_dict(),
               "task_params": dict(self.task_params), "data": self.data}
        if self.migration is not None:
            out["migration"] = self.migration
        return out

    @classmethod
    def from_dict(cls, d: dict, task: str | None = None) -> "ProgramRunConfig":
        """``task`` fills in configs stored before the task was part of them."""
        return cls(task=d.get("task") or task, preset=d.get("preset", "paper"),
                   program=ProgramConfig.from_dict(d["program"]),
                   task_params=dict(d.get("task_params") or {}), data=d.get("data"),
                   migration=d.get("migration"))
