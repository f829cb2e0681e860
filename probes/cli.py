"""``workbench probes collect|fit``: activations to disk, then probes for every layer and
position, with controls, baselines and a causal check (plugin entry point)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from workbench.cli import emit
from workbench.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("probes", help="linear probes: collect activations, fit probes")
    sub = p.add_subparsers(dest="probes_command", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    c = sub.add_parser("collect", help="activations at chosen positions, streamed to disk")
    c.add_argument("--model", required=True, help="run id/name or Hugging Face model directory")
    c.add_argument("--checkpoint", default="final", help="STEP, final or all (a run's series)")
    c.add_argument("--data", required=True,
                   help="FILE.jsonl / FILE.txt, or train / test / all (a task run's dataset)")
    c.add_argument("--layers", default="all", help="all, last, N, A:B or a list (0 = embeddings)")
    c.add_argument("--positions", default="-1",
                   help="N, -N, A:B, all, before:X / start:X / end:X / after:X, comma-separated")
    c.add_argument("--hooks", default="resid", help="resid, attn, mlp or hook names, comma-separated")
    c.add_argument("--backend", default="bridge", choices=["bridge", "nnsight"])
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--chunk-size", type=int, default=4096, help="examples per chunk file")
    c.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    c.add_argument("--device", default=None)
    c.add_argument("-o", "--output", default=None,
                   help="activations directory (default: under the run's directory)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=_collect)

    f = sub.add_parser("fit", help="probes for every layer and position of an activations dir")
    f.add_argument("acts", help="activations directory (or a checkpoint-series directory)")
    f.add_argument("--target", required=True, help="column of the data, or a labels file")
    f.add_argument("--kind", default="logistic", help="linear, logistic, lowrank:R or mlp[:H]")
    f.add_argument("--task", default="auto", choices=["auto", "classify", "regress"])
    f.add_argument("--split-by", default=None, help="group column for an entity-level split")
    f.add_argument("--test-fraction", type=float, default=0.3)
    f.add_argument("--allow-untested-classes", action="store_true",
                   help="accept a split leaving some classes without a test example")
    f.add_argument("--control", action="store_true", help="control task and selectivity")
    f.add_argument("--control-by", default=None, help="type column of the control task")
    f.add_argument("--baseline", action="append", default=[], choices=["random"],
                   help="also fit on a randomly initialised model of the same shape")
    f.add_argument("--causal", default=None, choices=["ablate", "steer"],
                   help="intervene along the best probe and report the model's answer change")
    f.add_argument("--causal-site", default=None)
    f.add_argument("--causal-position", default=None)
    f.add_argument("--answer-position", default="-1", help="where the model's answer is read")
    f.add_argument("--model", default=None,
                   help="the model the activations must come from (checked; default: theirs)")
    f.add_argument("--checkpoint", default=None, help="with --model: its step (default final)")
    f.add_argument("--sites", default=None, help="comma-separated sites (default: all)")
    f.add_argument("--l2", type=float, default=None)
    f.add_argument("--max-iter", type=int, default=200)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--no-store", action="store_true", help="do not record the result in the run")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=_fit)
    __import__("probes.prior_cli", fromlist=["add_subcommands"]).add_subcommands(sub)
    __import__("probes.knowledge_cli", fromlist=["add_subcommands"]).add_subcommands(sub)


def _default_output(args, model) -> Path:
    if model.run is None:
        raise UserError("give -o DIR for the activations of a model directory")
    key = json.dumps([str(Path(args.data).resolve()) if Path(args.data).is_file() else args.data,
                      args.layers, args.positions, args.hooks, args.dtype])
    return model.run.directory / "probes" / f"acts-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _collect(args) -> int:
    from probes.collect import collect_activations
    from probes.sources import load_data, load_model, open_run

    steps: list = [args.checkpoint]
    if args.checkpoint == "all":
        if Path(args.model).expanduser().is_dir():
            raise UserError("--checkpoint all needs a run (a model directory has one checkpoint)")
        steps = open_run(args.model).checkpoints()
    elif args.checkpoint not in ("final", "latest"):
        try:
            steps = [int(args.checkpoint)]
        except ValueError:
            raise UserError(f"--checkpoint must be a step, final or all, got "
                            f"{args.checkpoint!r}") from None
    results = []
    root = None
    for step in steps:
        model = load_model(args.model, step=step, device=args.device)
        root = root or (Path(args.output) if args.output else _default_output(args, model))
        out = root / f"step_{model.step:08d}" if args.checkpoint == "all" else root
        r = collect_activations(model, load_data(model, args.data), out, layers=args.layers,
                                positions=args.positions, hooks=args.hooks,
                                batch_size=args.batch_size, chunk_size=args.chunk_size,
                                dtype=args.dtype, backend=args.backend,
                                progress=not args.json and sys.stderr.isatty())
        results.append({"directory": r.directory, "step": model.step, "model": model.identity,
                        "n_examples": r.n_examples, "sites": list(r.sites),
                        "positions": list(r.positions), "chunks_written": r.chunks_written,
                        "chunks_skipped": r.chunks_skipped, "tokens_per_second":
                        round(r.tokens_per_second, 1), "seconds": round(r.seconds, 3)})
    payload = results[0] if args.checkpoint != "all" else {"directory": str(root),
                                                           "checkpoints": results}
    text = "\n".join(f"{r['directory']}: {r['n_examples']} examples x {len(r['positions'])} "
                     f"positions x {len(r['sites'])} sites ({r['chunks_written']} chunks written"
                     f", {r['chunks_skipped']} resumed, {r['tokens_per_second']:.0f} tokens/s)"
                     for r in results)
    emit(payload, args.json, text)
    return 0


def _table(result) -> str:
    width = max(len(s) for s in result.sites)
    head = " " * width + "  " + "  ".join(f"{p:>9}" for p in result.positions)
    lines = [f"{result.target} ({result.metric}, {result.kind}; n_train {result.n_train}, "
             f"n_test {result.n_test}, chance {result.chance:.3f})", head]
    for name, rows in (("test", result.test_score), ("control", result.control_score),
                       ("selectivity", result.selectivity)):
        if rows is None:
            continue
        lines.append(f"[{name}]")
        lines += [f"{s:<{width}}  " + "  ".join(f"{v:9.3f}" for v in row)
                  for s, row in zip(result.sites, rows)]
    b = result.best
    lines.append(f"best: {b['site']} at position {b['position']}: {b['test_score']:.3f}")
    return "\n".join(lines)


def _fit_one(args, acts_dir: Path) -> tuple[dict, str]:
    from probes.activations import load_activations
    from probes.fit import fit_probes

    sites = args.sites.split(",") if args.sites else None
    acts = load_activations(acts_dir, sites=sites)
    options = dict(kind=args.kind, task=args.task, split_by=args.split_by,
                   test_fraction=args.test_fraction, control=args.control,
                   control_by=args.control_by, seed=args.seed, l2=args.l2,
                   max_iter=args.max_iter, allow_untested_classes=args.allow_untested_classes)
    model = None
    if args.model:  # refuse activations of another model before fitting anything
        from probes.activations import check_same_model
        from probes.sources import load_model
        model = load_model(args.model, step=args.checkpoint or "final")
        check_same_model(acts.manifest, model.identity, acts_dir)
    result = fit_probes(acts, args.target, **options)
    payload, text = result.to_json(), _table(result)
    if model is None and (args.baseline or args.causal):
        from probes.sources import load_model
        ident = acts.model
        model = load_model(ident["run_id"] or ident["name"], step=ident["step"] or "final")
    if "random" in args.baseline:
        from probes.baselines import random_init_baseline
        base = random_init_baseline(acts_dir, args.target, model, sites=sites, **options)
        payload["random_baseline"] = {"test_score": base.test_score, "best": base.best}
        text += f"\nrandom-init baseline best: {base.best['site']} at {base.best['position']}:" \
                f" {base.best['test_score']:.3f}"
    if args.causal:
        import dataclasses

        from probes.causal import causal_check
        check = causal_check(model, acts, result, site=args.causal_site,
                             position=args.causal_position, mode=args.causal,
                             answer_position=args.answer_position, seed=args.seed)
        payload["causal"] = dataclasses.asdict(check)
        text += (f"\ncausal ({check.mode} {check.site} at {check.position}, rank {check.rank}): "
                 f"answers changed {check.answer_changed:.3f} (random {check.random_answer_changed:.3f}),"
                 f" log-prob drop {check.logprob_drop:.3f} (random {check.random_logprob_drop:.3f})")
    payload["acts"] = str(acts_dir)
    return payload, text


def store_result(payload: dict, key_parts: list[str]) -> str | None:
    """Record ``payload`` as a ``probes`` result of the model's run (None if not a run)."""
    run_id = payload.get("model", {}).get("run_id")
    if not run_id:
        return None
    from workbench.store import RunStore
    key = " ".join(key_parts)
    RunStore().put_result(run_id, "probes", key, payload)
    return key


def _fit(args) -> int:
    root = Path(args.acts)
    series = sorted(p for p in root.glob("step_*") if (p / "manifest.json").is_file()) \
        if root.is_dir() and not (root / "manifest.json").is_file() else []
    dirs = series or [root]
    payloads, texts = [], []
    for d in dirs:
        payload, text = _fit_one(args, d)
        payloads.append(payload)
        texts.append((f"== {d.name}\n" if series else "") + text)
    key_base = [f"target={args.target}", f"kind={args.kind}", f"split_by={args.split_by}",
                f"control={args.control}"]
    if not args.no_store:
        for payload in payloads:
            key = store_result(payload, [f"step={payload['model'].get('step')}",
                                         f"acts={Path(payload['acts']).resolve()}", *key_base])
            if key:
                payload["stored_as"] = key
    if series:
        out = {"series": payloads, "steps": [p["model"].get("step") for p in payloads],
               "best_by_step": [p["best"]["test_score"] for p in payloads]}
    else:
        out = payloads[0]
    emit(out, args.json, "\n".join(texts))
    return 0
