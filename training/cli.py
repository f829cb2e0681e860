"""``workbench tasks`` and ``workbench train``: the CLI faces of :mod:`training.api`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys

from training.api import list_tasks, train
from training.config import DERIVED_MODEL_FIELDS, TrainConfig
from training.presets import presets_for
from training.tasks import get_task_class
from training.trainer import TrainingFailed
from workbench.cli import HelpWithKeys, emit
from workbench.errors import UserError
from workbench.lifecycle import raise_interrupt
from workbench.models import ModelConfig
from workbench.settings import parse_settings


def register_tasks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the synthetic tasks and their parameters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_tasks)


def _tasks(args) -> int:
    tasks = list_tasks()
    lines = []
    for t in tasks:
        params = ", ".join(f"{p['name']}={p['default']}" for p in t["parameters"])
        lines.append(f"{t['name']:<24} {t['description']}\n{'':<24} params: {params}; "
                     f"presets: {', '.join(t['presets'])}")
    emit({"tasks": tasks}, args.json, "\n".join(lines))
    return 0


def _print_train_keys(namespace) -> None:
    """The config keys of ``workbench train``, with those of the task named before --help."""
    print("  train: " + ", ".join(f.name for f in dataclasses.fields(TrainConfig)))
    model_keys = [f.name for f in dataclasses.fields(ModelConfig)
                  if f.name not in DERIVED_MODEL_FIELDS]
    print("  model: " + ", ".join(model_keys))
    task = getattr(namespace, "task", None)
    if task:
        try:
            cls = get_task_class(task)
            print(f"  task ({task}): " + ", ".join(p["name"] for p in cls.parameters()))
            print(f"  presets: {', '.join(sorted(presets_for(task)))}")
        except UserError as exc:
            print(f"  ({exc})")
    else:
        print("  task: see `workbench train TASK --help` or `workbench tasks`")


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a transformer on a task", add_help=False)
    p.add_argument("-h", "--help", action=HelpWithKeys, keys=_print_train_keys,
                   help="show this help and the config keys")
    p.add_argument("task", nargs="?", metavar="TASK", help="a task from `workbench tasks`")
    p.add_argument("--preset", default="default", help="preset name (default, tiny, ...)")
    p.add_argument("--config", dest="config_file", metavar="FILE",
                   help="JSON or YAML file of config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable)")
    p.add_argument("--seed", type=int, help="training and initialisation seed")
    p.add_argument("--name", help="a unique name for the run")
    p.add_argument("--data", metavar="FILE.jsonl", help="train on a custom JSONL task")
    p.add_argument("--resume", metavar="RUN", help="resume an interrupted run")
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the job runner pre-creates the run
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(handler=_train)


def _train(args) -> int:
    # A job cancelled with SIGTERM stops like Ctrl-C (also before the run lifecycle starts).
    signal.signal(signal.SIGTERM, raise_interrupt)
    if args.resume and (args.task or args.overrides or args.config_file or args.data):
        raise UserError("--resume continues a run with its own config; "
                        "give no task, --set, --config or --data with it")
    if args.run_id:
        from workbench.store import RunStore
        run = RunStore().get_run(args.run_id)
        if args.resume is None and run.status != "created":
            args.resume = run.id
    try:
        result = train(args.task, preset=args.preset, overrides=parse_settings(args.overrides),
                       config_file=args.config_file, seed=args.seed, name=args.name,
                       data=args.data, resume=args.resume,
                       progress=not args.no_progress,
                       run_id=args.run_id if args.resume is None else None)
    except TrainingFailed as exc:
        print(f"workbench: run failed: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    text = (f"run {result.run_id}: {result.task}, {result.steps} steps in "
            f"{result.wall_seconds:.1f}s\n"
            f"  train loss {result.train_loss:.4g}  acc {result.train_acc:.4f}\n"
            f"  test  loss {result.test_loss:.4g}  acc {result.test_acc:.4f}\n"
            f"  checkpoint {result.checkpoint}")
    emit(result.to_json(), args.json, text)
    return 0
