"""``workbench circuits``: discover, sweep, evaluate and compare circuits (plugin entry point)."""

from __future__ import annotations

import argparse

from workbench.cli import emit
from workbench.errors import UserError


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("circuits", help="find and compare circuits (Edge Pruning, EAP, "
                                               "ACDC)")
    sub = p.add_subparsers(dest="circuits_command", metavar="SUBCOMMAND",
                           parser_class=type(p))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    d = sub.add_parser("discover", help="find a circuit for a task on a model")
    add_discover_arguments(d)
    d.set_defaults(handler=_discover)

    s = sub.add_parser("sweep", help="run a sweep spec (models x tasks x sparsities x methods "
                                     "x seeds), resumable")
    s.add_argument("spec")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--in-process", action="store_true",
                   help="run entries in this process instead of subprocess jobs")
    s.add_argument("-o", "--output", default=None, help="sweep directory (default: next to spec)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_sweep)

    e = sub.add_parser("evaluate", help="re-evaluate a saved circuit")
    e.add_argument("circuit")
    e.add_argument("--model", required=True)
    e.add_argument("--task", required=True)
    e.add_argument("--ablation", default=None)
    e.add_argument("--examples", type=int, default=256)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(handler=_evaluate)

    c = sub.add_parser("compare", help="shared edges, Jaccard and chance overlap of two "
                                       "circuits")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=_compare)


def add_discover_arguments(d: argparse.ArgumentParser) -> None:
    """The options of ``workbench circuits discover`` (also read by ``torchrun -m
    circuits.distributed``, which runs the same search on several processes)."""
    d.add_argument("--model", help="run id/name or Hugging Face model directory")
    d.add_argument("--task", help="induction, modular, resample, ioi, greater-than or FILE.jsonl")
    d.add_argument("--target-sparsity", type=_float, default=0.95)
    d.add_argument("--method", default="edge-pruning", help="edge-pruning, eap or acdc")
    d.add_argument("--ablation", default="corrupted", help="corrupted, zero or mean")
    d.add_argument("--objective", default="kl", help="kl or logit-diff")
    d.add_argument("--steps", type=int, default=3000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--examples", type=int, default=256)
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--lr", type=_float, default=0.8)
    d.add_argument("--lambda-lr", type=_float, default=None,
                   help="Lagrange multipliers' learning rate (default: --lr)")
    d.add_argument("--device", default=None)
    d.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: masked forward under bf16 autocast (GPU; also runs on CPU)")
    d.add_argument("--grad-checkpoint", action="store_true",
                   help="recompute attention layers in backward to save memory")
    d.add_argument("--node-masks", action="store_true",
                   help="also prune whole writers (Edge Pruning's node masks)")
    d.add_argument("--node-target-sparsity", type=_float, default=0.0,
                   help="target fraction of writers off, with --node-masks")
    d.add_argument("--name", default=None)
    d.add_argument("--run-id", default=None,
                   help=argparse.SUPPRESS)  # a prepared run: searched with its stored config
    d.add_argument("-o", "--output", default=None, help="directory for the circuit files")
    d.add_argument("--json", action="store_true")


def config_from_args(args):
    """The :class:`~circuits.api.DiscoverConfig` of parsed discover options, or ``None`` for
    ``--run-id`` alone (the run's stored config)."""
    from circuits.api import DiscoverConfig

    if args.model is None and args.task is None and args.run_id is not None:
        return None
    if args.model is None or args.task is None:
        raise UserError("--model and --task are required (or --run-id of a prepared run)")
    return DiscoverConfig(model=args.model, task=args.task, method=args.method,
                          target_sparsity=args.target_sparsity, ablation=args.ablation,
                          objective=args.objective, steps=args.steps, seed=args.seed,
                          n_examples=args.examples, batch_size=args.batch_size, lr=args.lr,
                          lambda_lr=args.lambda_lr, device=args.device,
                          precision=args.precision, grad_checkpoint=args.grad_checkpoint,
                          node_masks=args.node_masks,
                          node_target_sparsity=args.node_target_sparsity)


def run_discover(args, dist=None) -> int:
    """Search per ``args`` and print the result (rank 0); the CLI face and torchrun's."""
    from circuits.api import discover
    from circuits.dist_context import SINGLE

    dist = dist or SINGLE
    res = discover(config_from_args(args), out_dir=args.output, name=args.name,
                   run_id=args.run_id, dist=dist)
    if res is None:  # a torchrun process other than rank 0
        return 0
    emit({**res.to_json(), "world_size": dist.world_size}, args.json,
         f"run {res.run_id}: {res.n_edges}/{res.total_edges} edges (sparsity "
         f"{res.sparsity:.4f}), KL {res.kl:.4g}, accuracy {res.accuracy:.3f}, exact match "
         f"{res.exact_match:.3f} in {res.wall_seconds:.1f}s\ncircuit: {res.paths['json']}")
    return 0


def _discover(args) -> int:
    return run_discover(args)


def _sweep(args) -> int:
    from circuits.sweep import run_sweep
    summary = run_sweep(args.spec, workers=args.workers, dry_run=args.dry_run,
                        in_process=args.in_process, out_dir=args.output,
                        progress=not args.json)
    emit(summary, args.json, f"{summary['done']}/{summary['total']} entries done "
                             f"({summary['skipped']} skipped, {summary['failed']} failed); "
                             f"summary: {summary.get('csv', '-')}")
    return 1 if summary["failed"] else 0


def _evaluate(args) -> int:
    from circuits.api import evaluate_saved
    res = evaluate_saved(args.circuit, args.model, args.task, ablation=args.ablation,
                         n_examples=args.examples, seed=args.seed)
    emit(res, args.json, " ".join(f"{k}={v}" for k, v in res.items()))
    return 0


def _compare(args) -> int:
    from circuits.compare import compare
    from circuits.io import load_circuit
    res = compare(load_circuit(args.a), load_circuit(args.b)).to_json()
    emit(res, args.json, f"shared {res['shared']} edges ({res['n_a']} vs {res['n_b']}), "
                         f"Jaccard {res['jaccard']:.3f} (chance {res['chance_jaccard']:.3f})")
    return 0
