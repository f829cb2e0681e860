"""Transformer Program runs in the run store: train-and-save, load, export, verify.

A run (kind ``program``) stores its :class:`~programs.config.ProgramRunConfig` (resolved task
parameters included) and keeps ``program.safetensors`` (:attr:`RunLayout.program`): the relaxed
model's weights plus the encoded train/test inputs (so ``verify`` needs neither the task
generator nor the custom file), with the config and shape in the metadata. Training runs inside
the store's run lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from programs.config import ProgramConfig, ProgramRunConfig, preset, preset_task_params
from programs.data import ProgramShape, encode
from programs.decompile import decompile
from programs.discrete import DiscreteProgram
from programs.model import ProgramModel
from programs.train import train_program
from programs.verify import VerifyResult, verify
from workbench.errors import UserError

KIND = "program"


def load_task(config: ProgramRunConfig):
    """The task data of a program run (deterministic from its resolved config)."""
    from training.tasks import load_jsonl_task, make_task

    if config.data is not None:
        return load_jsonl_task(config.data, layout="aligned", require_functional=True)
    return make_task(config.task, **config.task_params).generate()


def build_run_config(task: str, *, preset_name: str = "paper", overrides: dict | None = None,
                     seed: int | None = None, data_path: str | None = None,
                     task_params: dict | None = None) -> ProgramRunConfig:
    """Validate a training request into the run's resolved config (UserError naming the bad
    value); ``overrides`` and ``task_params`` may hold ``--set`` text."""
    from training.tasks import make_task

    overrides = dict(overrides or {})
    if seed is not None:
        overrides["seed"] = seed
    cfg = preset(preset_name, task).with_overrides(overrides)
    if data_path is None:
        task_params = make_task(task, **preset_task_params(preset_name, task,
                                                            task_params)).params()
    else:
        task_params = {}
    return ProgramRunConfig(task=task, preset=preset_name, program=cfg, task_params=task_params,
                            data=data_path)


def prepare_run(task: str, *, name: str | None = None, store=None,
                config: ProgramRunConfig | None = None, **request) -> str:
    """Validate a request (the keywords of :func:`build_run_config`, or its result as
    ``config``) and create its run in status ``created`` with the resolved config;
    ``train_run(run_id=...)`` (the job ``workbench programs train --run-id ID``) trains it."""
    from workbench.store import RunStore

    config = config if config is not None else build_run_config(task, **request)
    data = load_task(config)
    store = store or RunStore()
    return store.create_run(kind=KIND, task=_label(config, data), name=name,
                            config=config.to_dict()).id


def train_run(task: str | None = None, *, preset_name: str = "paper",
              overrides: dict | None = None, seed: int | None = None,
              data_path: str | None = None, task_params: dict | None = None,
              name: str | None = None, store=None, on_epoch=None,
              run_id: str | None = None) -> dict:
    """Train a program, save it as a run; returns the CLI's JSON summary.

    ``run_id`` trains a run created beforehand (:func:`prepare_run`) from its stored config.
    """
    from workbench.checkpoint import save_checkpoint
    from workbench.store import RunStore

    store = store or RunStore()
    if run_id is not None and task is None:
        run = store.get_run(run_id)
        if run.kind != KIND:
            raise UserError(f"run {run_id!r} is a {run.kind} run, not a program run")
        config = ProgramRunConfig.from_dict(run.config, run.task)
        data = load_task(config)
    else:
        config = build_run_config(task, preset_name=preset_name, overrides=overrides,
                                  seed=seed, data_path=data_path, task_params=task_params)
        data = load_task(config)
        if run_id is not None:
            raise UserError("--run-id trains the run's stored config; give no task with it")
        run = store.create_run(kind=KIND, task=_label(config, data), name=name,
                               config=config.to_dict())
    cfg, label = config.program, _label(config, data)

    def report(epoch: int, metrics: dict) -> bool:
        store.log_metrics(run.id, epoch, metrics)
        return True if on_epoch is None else on_epoch(epoch, metrics)

    with store.lifecycle(run.id) as life:
        result = train_program(data, cfg, report)
        shape = result.program.shape
        x_train, _ = encode(data.train, shape, data.pad_token)
        x_test, _ = encode(data.test, shape, data.pad_token)
        tensors = {f"model.{k}": v for k, v in result.model.state_dict().items()}
        tensors |= {"data.x_train": x_train, "data.x_test": x_test}
        path = store.layout(run.id).program
        save_checkpoint(path, tensors, {"program_config": cfg.to_dict(),
                                        "shape": shape.to_dict(), "task": label})
        store.add_artifact(run.id, path, "checkpoint", step=cfg.epochs)
        source = decompile(result.program, title=f"Transformer Program for {label}")
        life.summary = {"run_id": run.id, "test_acc": result.test_acc,
                        "train_acc": result.train_acc, "wall_seconds": result.wall_seconds,
                        "seconds_per_epoch": result.seconds_per_epoch,
                        "program_lines": len(source.splitlines())}
    return life.summary


def _label(config: ProgramRunConfig, data) -> str:
    return config.task if config.data is None else f"custom:{data.name}"


@dataclass(frozen=True)
class LoadedRun:
    run_id: str
    task: str
    model: ProgramModel
    program: DiscreteProgram
    x_train: torch.Tensor
    x_test: torch.Tensor


def load_run(ref: str, store=None) -> LoadedRun:
    from workbench.checkpoint import load_checkpoint
    from workbench.store import RunStore

    store = store or RunStore()
    run = store.get_run(ref)
    if run.kind != KIND:
        raise UserError(f"run {ref!r} is a {run.kind!r} run, not a Transformer Program")
    path = store.layout(run.id).program
    if not path.is_file():
        raise UserError(f"run {ref!r} has no program checkpoint (status {run.status!r})")
    tensors, meta = load_checkpoint(path)
    cfg = ProgramConfig.from_dict(meta["program_config"])
    shape = ProgramShape.from_dict(meta["shape"])
    model = ProgramModel(cfg, shape)
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                           if k.startswith("model.")})
    return LoadedRun(run_id=run.id, task=meta.get("task", run.task), model=model,
                     program=model.discretize(), x_train=tensors["data.x_train"],
                     x_test=tensors["data.x_test"])


def export_run(ref: str, store=None) -> str:
    loaded = load_run(ref, store)
    return decompile(loaded.program, title=f"Transformer Program for {loaded.task}")


def verify_run(ref: str, store=None) -> VerifyResult:
    loaded = load_run(ref, store)
    source = decompile(loaded.program, title=f"Transformer Program for {loaded.task}")
    return verify(loaded.program, torch.cat([loaded.x_train, loaded.x_test]), source)


def upgrade_program_run(store, run) -> None:
    """Store migration 4 (:mod:`workbench.run_migrations`): an old program run's task
    parameters resolved with today's defaults, and its task named in the config."""
    from training.tasks import make_task
    from workbench.run_migrations import MIGRATION_NOTE

    stored = dict(run.config)
    if "program" not in stored or stored.get("data") is not None:
        return  # not a program config, or custom data (nothing to resolve)
    params = dict(stored.get("task_params") or {})
    task = stored.get("task") or run.task
    try:
        resolved = make_task(task, **params).params()
    except (TypeError, ValueError):
        return  # a task this code does not know: the run keeps what it has
    if resolved != params or stored.get("task") != task:
        store.set_config(run.id, {**stored, "task": task, "task_params": resolved,
                                  "migration": f"task parameters {MIGRATION_NOTE} "
                                               f"(stored: {params})"})
