"""Transformer Program runs in the run store: train-and-save, load, export, verify.

A run (kind ``program``) keeps ``program.safetensors``: the relaxed model's weights plus the
encoded train/test inputs (so ``verify`` needs neither the task generator nor the custom file),
with the config and shape in the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from programs.config import ProgramConfig, preset, preset_task_params
from programs.data import ProgramShape, encode
from programs.decompile import decompile
from programs.discrete import DiscreteProgram
from programs.model import ProgramModel
from programs.train import train_program
from programs.verify import VerifyResult, verify
from workbench.errors import UserError

KIND = "program"
CHECKPOINT = "program.safetensors"


def load_task(task: str, data_path: str | None, task_params: dict, seed: int):
    from training.tasks import load_jsonl_task, make_task

    if data_path is not None:
        return load_jsonl_task(data_path, layout="aligned", require_functional=True)
    return make_task(task, **task_params).generate()


def run_config(program: dict, preset_name: str, task_params: dict | None,
               data_path: str | None) -> dict:
    """The config a program run records: program settings, preset, task parameters, data."""
    return {"program": program, "preset": preset_name, "task_params": task_params or {},
            "data": data_path}


def train_run(task: str, *, preset_name: str = "paper", overrides: dict | None = None,
              seed: int | None = None, data_path: str | None = None,
              task_params: dict | None = None, name: str | None = None, store=None,
              on_epoch=None, run_id: str | None = None) -> dict:
    """Train a program, save it as a run; returns the CLI's JSON summary.

    ``run_id`` trains into a run already created (the app creates it to link its job at once).
    """
    from workbench.checkpoint import save_checkpoint
    from workbench.store import RunStore

    overrides = dict(overrides or {})
    if seed is not None:
        overrides["seed"] = seed
    cfg = preset(preset_name, task).with_overrides(overrides)
    if data_path is None:
        task_params = preset_task_params(preset_name, task, task_params)
    data = load_task(task, data_path, task_params or {}, cfg.seed)
    store = store or RunStore()
    label = task if data_path is None else f"custom:{data.name}"
    config = run_config(cfg.to_dict(), preset_name, task_params, data_path)
    if run_id is not None:
        run = store.claim_created_run(run_id, KIND, config)
    else:
        run = store.create_run(kind=KIND, task=label, name=name, config=config)
    store.set_status(run.id, "running")

    def report(epoch: int, metrics: dict) -> bool:
        store.log_metrics(run.id, epoch, metrics)
        return True if on_epoch is None else on_epoch(epoch, metrics)

    try:
        result = train_program(data, cfg, report)
        shape = result.program.shape
        x_train, _ = encode(data.train, shape, data.pad_token)
        x_test, _ = encode(data.test, shape, data.pad_token)
        tensors = {f"model.{k}": v for k, v in result.model.state_dict().items()}
        tensors |= {"data.x_train": x_train, "data.x_test": x_test}
        path = store.run_dir(run.id) / CHECKPOINT
        save_checkpoint(path, tensors, {"program_config": cfg.to_dict(),
                                        "shape": shape.to_dict(), "task": label})
        store.add_artifact(run.id, path, "checkpoint", step=cfg.epochs)
        source = decompile(result.program, title=f"Transformer Program for {label}")
        summary = {"run_id": run.id, "test_acc": result.test_acc, "train_acc": result.train_acc,
                   "wall_seconds": result.wall_seconds,
                   "seconds_per_epoch": result.seconds_per_epoch,
                   "program_lines": len(source.splitlines())}
        store.set_summary(run.id, summary)
        store.set_status(run.id, "completed")
    except BaseException as exc:
        store.set_status(run.id, "failed", str(exc)[:500])
        raise
    return summary


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
    path = store.run_dir(run.id) / CHECKPOINT
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
