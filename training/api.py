"""Public Python API of training: ``train`` (new, prepared or resumed runs), ``prepare_run``
and ``list_tasks``.

Everything is validated before the store is touched, so bad input leaves no run behind. A run
stores its fully resolved config (every task parameter, the task's hidden facts, the model and
the training settings) and its encoded split; work on it runs inside the store's run lifecycle.
"""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

from training.config import (DERIVED_MODEL_FIELDS, RunConfig, TrainConfig, apply_overrides,
                             read_config_file)
from training.datasets import EncodedTask, encode
from training.distributed import SINGLE, DistContext, broadcast_object, context_from_env, \
    run_to_resume
from training.presets import get_preset, presets_for
from training.tasks import get_task_class, load_jsonl_task, make_task, task_names
from training.trainer import TrainResult, train_loop
from workbench.checkpoint import atomic_write_json, save_checkpoint
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


def check_settings(task: str, *, preset: str = "default",
                   overrides: dict | None = None) -> None:
    """The checks of :func:`build_config` that need no task data (keys, types, the task's,
    model's and training's own validation), cheap enough to run once per form field."""
    sections = _sections(task, preset, overrides, None, None, None)[1]
    if task != CUSTOM_TASK:
        make_task(task, **sections["task"])  # validates without generating
    TrainConfig(**sections["train"])
    ModelConfig(**{k: v for k, v in sections["model"].items()
                   if k not in DERIVED_MODEL_FIELDS})


def build_config(task: str | None, *, preset: str = "default", overrides: dict | None = None,
                 config_file: str | None = None, seed: int | None = None,
                 data: str | None = None) -> tuple[RunConfig, EncodedTask]:
    """Resolve preset + config file + overrides into a validated config and encoded data."""
    task, sections = _sections(task, preset, overrides, config_file, seed, data)
    if task == CUSTOM_TASK:
        if not Path(data).is_file():
            raise UserError(f"data file {data!r} does not exist")
        task_params, task_facts = dict(sections["task"]), {}
        task_data = load_jsonl_task(data, **task_params)
    else:
        task_obj = make_task(task, **sections["task"])
        task_params, task_facts = task_obj.params(), task_obj.facts()
        task_data = task_obj.generate()
    train_cfg = TrainConfig(**sections["train"])
    for key in DERIVED_MODEL_FIELDS:
        sections["model"].pop(key, None)
    probe = ModelConfig(**sections["model"])  # validates the architecture fields first
    encoded = encode(task_data, train_cfg.layout, causal_task=_is_causal(task),
                     causal_model=probe.attention_dir == "causal")
    model_cfg = dataclasses.replace(probe, d_vocab=len(encoded.input_vocab),
                                    d_vocab_out=len(encoded.output_vocab), n_ctx=encoded.seq_len)
    config = RunConfig(task=task, task_params=task_params, task_facts=task_facts,
                       model=model_cfg, train=train_cfg,
                       data_path=str(Path(data).resolve()) if data else None)
    return config, encoded


def _sections(task, preset, overrides, config_file, seed, data) -> tuple[str, dict]:
    """``(task, {"task", "model", "train"} settings)`` after preset, file, overrides, seed."""
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
    return task, sections


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


def prepare_run(task: str | None = None, *, preset: str = "default",
                overrides: dict | None = None, config_file: str | None = None,
                seed: int | None = None, data: str | None = None, name: str | None = None,
                store: RunStore | None = None) -> str:
    """Validate a training request and create its run (status ``created``) with the resolved
    config and the files a run is born with; returns the run id. ``train(run_id=...)`` (or
    the job ``workbench train --run-id ID``) then trains it from the stored config."""
    if name is not None:
        validate_name(name)
    config, data_enc = build_config(task, preset=preset, overrides=overrides,
                                    config_file=config_file, seed=seed, data=data)
    store = store or RunStore()
    return _create(store, config, data_enc, name).id


def train(task: str | None = None, *, preset: str = "default", overrides: dict | None = None,
          config_file: str | None = None, seed: int | None = None, name: str | None = None,
          data: str | None = None, resume: str | None = None, progress: bool = False,
          store: RunStore | None = None, run_id: str | None = None) -> TrainResult:
    """Train a model (or resume run ``resume``) and return its summary.

    ``overrides`` maps config keys (``lr``, ``p``, ``d_model`` or ``train.seed``) to values.
    ``run_id`` trains a run created beforehand by :func:`prepare_run`, with its stored config
    (then no task, overrides, config file, seed or data may be given).
    """
    ctx = context_from_env()
    store = store or RunStore()
    if resume is not None:
        run = run_to_resume(store, resume, ctx, kind="train", noun="training")
        config = RunConfig.from_dict(run.config)
        return _run(store, run.id, config, load_data(config), progress, resume=True, ctx=ctx)
    if run_id is not None:
        if task is not None or overrides or config_file or seed is not None or data:
            raise UserError("--run-id trains the run's stored config; give no task, --set, "
                            "--config, --seed or --data with it")
        config = RunConfig.from_dict(_train_run(store, run_id).config)
        return _run(store, run_id, config, load_data(config), progress, resume=False, ctx=ctx)
    if name is not None:
        validate_name(name)
    config, data_enc = build_config(task, preset=preset, overrides=overrides,
                                    config_file=config_file, seed=seed, data=data)
    if not ctx.is_main:  # rank 0 creates the run and writes its files; the others follow
        run_id = broadcast_object(None, ctx)
        config = RunConfig.from_dict(store.get_run(run_id).config)
        return _run(store, run_id, config, data_enc, progress, resume=False, ctx=ctx)
    run_id = _create(store, config, data_enc, name).id
    broadcast_object(run_id, ctx)
    return _run(store, run_id, config, data_enc, progress, resume=False, ctx=ctx)


def _train_run(store: RunStore, ref: str):
    run = store.get_run(ref)
    if run.kind != "train":
        raise UserError(f"run {ref!r} is a {run.kind} run, not a training run")
    return run


def _create(store: RunStore, config: RunConfig, data_enc: EncodedTask, name: str | None):
    """A new ``train`` run with its config, vocabularies, split and (custom) data copy."""
    run = store.create_run(kind="train", task=config.task, config=config.to_dict(), name=name)
    layout = store.layout(run.id)
    if config.data_path:  # keep a copy so the run can be resumed and audited
        shutil.copyfile(config.data_path, layout.data_copy)
        config = dataclasses.replace(config, data_path=str(layout.data_copy))
        store.set_config(run.id, config.to_dict())
    write_run_files(store, run.id, config, data_enc)
    return store.get_run(run.id)


def write_run_files(store: RunStore, run_id: str, config: RunConfig,
                    data_enc: EncodedTask) -> None:
    """``config.json``, ``vocab.json`` and the split (the encoded train/test tensors, which
    analyses in the core read instead of regenerating the task)."""
    layout = store.layout(run_id)
    atomic_write_json(layout.config, config.to_dict())
    atomic_write_json(layout.vocab, data_enc.vocab_json())
    save_checkpoint(layout.split, {"train_x": data_enc.train_x, "train_y": data_enc.train_y,
                                   "test_x": data_enc.test_x, "test_y": data_enc.test_y},
                    {"task": config.task, **data_enc.vocab_json()})
    store.add_artifact(run_id, layout.split, "split")


def _run(store: RunStore, run_id: str, config: RunConfig, data: EncodedTask, progress: bool,
         resume: bool, ctx: DistContext = SINGLE) -> TrainResult:
    with store.lifecycle(run_id, resume=resume, writer=ctx.is_main) as life:
        model = build_native(config.model)
        result = train_loop(store, run_id, config, data, model,
                            progress=progress and ctx.is_main, resume=resume, ctx=ctx)
        life.summary = result.to_json()
    return result
