"""``workbench programs``: train, export and verify Transformer Programs."""

from __future__ import annotations

import argparse
from pathlib import Path

from programs.config import PRESETS, split_settings
from workbench.errors import UserError


def _train(args) -> int:
    from programs.api import train_run
    from workbench.cli import emit

    if args.task is None:
        if args.run_id is None:
            raise UserError("a task name is required (or --run-id of a prepared run)")
        if args.set or args.seed is not None or args.data or args.name:
            raise UserError("--run-id trains the run's stored config; give no --set, --seed, "
                            "--data or --name with it")
        summary = train_run(run_id=args.run_id)
    else:
        overrides, task_params = split_settings(args.set or [])
        summary = train_run(args.task, preset_name=args.preset, overrides=overrides,
                            seed=args.seed, data_path=args.data, task_params=task_params,
                            name=args.name, run_id=args.run_id)
    emit(summary, args.json, f"run {summary['run_id']}: test_acc {summary['test_acc']:.4f} "
                             f"train_acc {summary['train_acc']:.4f} in "
                             f"{summary['wall_seconds']:.1f}s, program "
                             f"{summary['program_lines']} lines")
    return 0


def _export(args) -> int:
    from programs.api import export_run
    from workbench.checkpoint import atomic_write_bytes

    source = export_run(args.run)
    atomic_write_bytes(Path(args.output), source.encode("utf-8"))
    print(f"wrote {args.output} ({len(source.splitlines())} lines)")
    return 0


def _verify(args) -> int:
    from programs.api import verify_run
    from workbench.cli import emit

    result = verify_run(args.run)
    emit({"agreement": result.agreement, "n_inputs": result.n_inputs}, args.json,
         f"agreement {result.agreement:.6f} over {result.n_inputs} inputs")
    return 0 if result.agreement == 1.0 else 1


def _compile(args) -> int:
    from programs.compiled_run import compile_run
    from workbench.cli import emit

    summary = compile_run(args.run, name=args.name)
    emit(summary, args.json, f"run {summary['run_id']}: {summary['n_layers']} layers, d_model "
                             f"{summary['d_model']}, {summary['n_heads']} heads; ground truth "
                             f"{summary['ground_truth_edges']} edges ({summary['ground_truth']})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("programs",
                                   help="Transformer Programs: train, export, verify, compile")
    sub = parser.add_subparsers(dest="programs_command", metavar="ACTION",
                                parser_class=type(parser))
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    train = sub.add_parser("train", help="train a Transformer Program on a task")
    train.add_argument("task", nargs="?", help="registered task name (or a label with --data)")
    train.add_argument("--preset", choices=PRESETS, default="paper")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="program setting (e.g. epochs=50) or task.PARAM=VALUE")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--data", metavar="FILE.jsonl", help="custom aligned task file")
    train.add_argument("--name", help="run name")
    train.add_argument("--run-id", help=argparse.SUPPRESS)  # the app pre-creates the run
    train.add_argument("--json", action="store_true")
    train.set_defaults(handler=_train)

    export = sub.add_parser("export", help="write a run's program as standalone Python")
    export.add_argument("run")
    export.add_argument("-o", "--output", required=True, metavar="PROG.py")
    export.set_defaults(handler=_export)

    verify = sub.add_parser("verify", help="program vs discrete model on every input")
    verify.add_argument("run")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    comp = sub.add_parser("compile", help="compile a program into a standard transformer run "
                                          "(kind 'compiled') with its ground-truth circuit")
    comp.add_argument("run")
    comp.add_argument("--name", help="name of the new run")
    comp.add_argument("--json", action="store_true")
    comp.set_defaults(handler=_compile)
