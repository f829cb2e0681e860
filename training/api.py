"""Public Python API of training: ``train`` (new or resumed runs) and ``list_tasks``.

Everything is validated before the store is touched, so bad input leaves no run behind.
"""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

from training.config import (DERIVED_MODEL_FIELDS, RunConfig, TrainConfig, apply_overrides,
                             read_config_file)
from training.datasets import EncodedTask, encode
from training.distributed import SINGLE, DistContext, broadcast_object, context_from_env
from training.presets import get_preset, presets_for
from training.tasks import get_task_class, load_jsonl_task, make_task, task_names
from training.trainer import TrainingFailed, TrainResult, train_loop
from workbench.checkpoint import atomic_write_json
from workbench.errors import UserError
from workbench.models import ModelConfig, build_native
from workbench.store import RunStore, validate_name

CUSTOM_TASK = "custom"
_CUSTOM_FIELDS = {"frac_train": float, "seed": int}


def list_tasks() -> list[dict]:
    """Registered tasks with description, parameters and presets."""
    out = []
    for name in task_names():
        cls = get_task_class(name)
        out.append({"name": name, "description": cls.description,
                    "parameters": cls.parameters(), "presets": sorted(presets_for(name)),
                    "causal": cls.causal})
    return out


def build_config(task: str | None, *, preset: str = "default", overrides: dict | None = None,
                 config_file: str | None = None, seed: int | None = None,
                 data: str | None = None) -> tuple[RunConfig, EncodedTask]:
    """Resolve preset + config file + overrides into a validated config and encoded data."""
    if data is not None:
        if task not in (None, CUSTOM_TASK):
            raise UserError("give either a task name or --data FILE.jsonl, not both")
        task = CUSTOM_TASK
    if task is None:
        raise UserError("a task name (see `workbench tasks`) or --data FILE.jsonl is required")
    if task == CUSTOM_TASK:
        task_fields = _CUSTOM_FIELDS
        sections = get_preset(task, preset)
        sections["task"] = {"frac_train": 0.8, "seed": 0}
    else:
        cls = get_task_class(task)
        hints = typing.get_type_hints(cls)
        task_fields = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
        sections = get_preset(task, preset)
    merged = dict(read_config_file(config_file)) if config_file else {}
    merged.update(overrides or {})
    apply_overrides(sections, merged, task_fields)
    if seed is not None:
        if seed < 0:
            raise UserError(f"seed must be >= 0, got {seed}")
        sections["train"]["seed"] = seed
        sections["model"]["init_seed"] = seed
    if task == CUSTOM_TASK:
        if not Path(data).is_file():
            raise UserError(f"data file {data!r} does not exist")
        task_data = load_jsonl_task(data, **sections["task"])
    else:
        task_data = make_task(task, **sections["task"]).generate()
    train_cfg = TrainConfig(**sections["train"])
    for key in DERIVED_MODEL_FIELDS:
        sections["model"].pop(key, None)
    probe = ModelConfig(**sections["model"])  # validates the architecture fields first
    encoded = encode(task_data, train_cfg.layout, causal_task=_is_causal(task),
                     causal_model=probe.attention_dir == "causal")
    model_cfg = dataclasses.replace(probe, d_vocab=len(encoded.input_vocab),
                                    d_vocab_out=len(encoded.output_vocab), n_ctx=encoded.seq_len)
    config = RunConfig(task=task, task_params=sections["task"], model=model_cfg,
                       train=train_cfg, data_path=str(Path(data).resolve()) if data else None)
    return config, encoded


def load_data(config: RunConfig) -> EncodedTask:
    """Regenerate a run's data from its config (deterministic)."""
    if config.task == CUSTOM_TASK:
        task_data = load_jsonl_task(config.data_path, **config.task_params)
    else:
        task_data = make_task(config.task, **config.task_params).generate()
    return encode(task_data, config.train.layout, causal_task=_is_causal(config.task),
                  causal_model=config.model.attention_dir == "causal")


def _is_causal(task: str) -> bool:
    return task != CUSTOM_TASK and get_task_class(task).causal


def train(task: str | None = None, *, preset: str = "default", overrides: dict | None = None,
          config_file: str | None = None, seed: int | None = None, name: str | None = None,
          data: str | None = None, resume: str | None = None, progress: bool = False,
          store: RunStore | None = None, run_id: str | None = None) -> TrainResult:
    """Train a model (or resume run ``resume``) and return its summary.

    ``overrides`` maps config keys (``lr``, ``p``, ``d_model`` or ``train.seed``) to values.
    ``run_id`` trains into a run already created (the job runner creates it to return the id
    at once).
    """
    ctx = context_from_env()
    if resume is not None:
        store = store or RunStore()
        run = store.get_run(resume)
        if run.kind != "train":
            raise UserError(f"run {resume!r} is a {run.kind} run, not a training run")
        if run.status == "completed":
            raise UserError(f"run {resume!r} has already completed")
        if run.status == "running":
            raise UserError(f"run {resume!r} is still being trained by process {run.owner}; "
                            f"stop it before resuming")
        config = RunConfig.from_dict(run.config)
        data_enc = load_data(config)
        return _run(store, run.id, config, data_enc, progress, resume=True, ctx=ctx)
    if name is not None:
        validate_name(name)
    config, data_enc = build_config(task, preset=preset, overrides=overrides,
                                    config_file=config_file, seed=seed, data=data)
    store = store or RunStore()
    if not ctx.is_main:  # rank 0 creates the run and writes its files; the others follow
        run_id = broadcast_object(None, ctx)
        config = RunConfig.from_dict(store.get_run(run_id).config)
        return _run(store, run_id, config, data_enc, progress, resume=False, ctx=ctx)
    if run_id is None:
        run = store.create_run(kind="train", task=config.task, config=config.to_dict(),
                               name=name)
        run_id = run.id
    if config.data_path:  # keep a copy so the run can be resumed and audited
        copy = store.run_dir(run_id) / "data.jsonl"
        shutil.copyfile(config.data_path, copy)
        config = dataclasses.replace(config, data_path=str(copy))
        store.set_config(run_id, config.to_dict())
    atomic_write_json(store.run_dir(run_id) / "config.json", config.to_dict())
    atomic_write_json(store.run_dir(run_id) / "vocab.json", data_enc.vocab_json())
    broadcast_object(run_id, ctx)
    return _run(store, run_id, config, data_enc, progress, resume=False, ctx=ctx)


def _run(store: RunStore, run_id: str, config: RunConfig, data: EncodedTask, progress: bool,
         resume: bool, ctx: DistContext = SINGLE) -> TrainResult:
    model = build_native(config.model)
    if not ctx.is_main:
        return train_loop(store, run_id, config, data, model, progress=False, resume=resume,
                          ctx=ctx)
    try:
        return train_loop(store, run_id, config, data, model, progress=progress, resume=resume,
                          ctx=ctx)
    except TrainingFailed:
        raise
    except KeyboardInterrupt:
        store.set_status(run_id, "cancelled", "interrupted; resume with --resume")
        raise
    except BaseException as exc:
        store.set_status(run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
